-- expect: 3:4 unterminated dollar
CREATE FUNCTION f() RETURNS int LANGUAGE sql
AS $body$ select 1 $$;
