-- expect: 2:1 credentials
CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x');
