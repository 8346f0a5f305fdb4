-- expect: 2:1 role membership
GRANT pg_read_server_files TO app;
