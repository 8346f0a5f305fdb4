-- expect: 3:1 system schema
CREATE FUNCTION public.f(int) RETURNS int LANGUAGE sql AS $$ select 1 $$;
ALTER FUNCTION public.f(int) SET SCHEMA pg_catalog;
