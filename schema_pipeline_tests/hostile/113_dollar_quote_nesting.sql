-- expect: 3:5 PROGRAM
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $a$ select $b$ x; $a $b$ $a$;
    COPY (SELECT 1) TO PROGRAM 'id';
