-- expect: 2:1 runs a query
CREATE TABLE copy_of AS SELECT * FROM pg_read_file('/etc/passwd');
