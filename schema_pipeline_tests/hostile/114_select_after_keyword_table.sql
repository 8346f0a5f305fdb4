-- expect: 3:1 DML
CREATE TABLE "begin" (atomic int);
SELECT pg_read_file('/etc/passwd');
