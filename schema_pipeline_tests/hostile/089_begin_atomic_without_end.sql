-- expect: 3:22 syntax error at end of input
CREATE FUNCTION f() RETURNS int LANGUAGE sql
BEGIN ATOMIC SELECT 1;
CREATE TABLE u ();
