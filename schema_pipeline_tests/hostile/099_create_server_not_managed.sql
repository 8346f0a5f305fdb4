-- expect: 3:1 create it outside the state
CREATE TABLE ok (id int);
CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw;
