-- expect: 3:1 duplicate
CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'select 1';
CREATE FUNCTION f(a INT) RETURNS int LANGUAGE sql AS 'select 2';
