-- expect: 2:1 system schema
CREATE FUNCTION information_schema.f() RETURNS int LANGUAGE sql AS 'select 1';
