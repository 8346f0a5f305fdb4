-- expect: 2:33 untrusted
CREATE FUNCTION f() RETURNS int LANGUAGE U&"\0063" AS '$libdir/dblink', 'dblink_exec';
