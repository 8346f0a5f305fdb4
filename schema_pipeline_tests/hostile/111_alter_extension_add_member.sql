-- expect: 3:1 extension
CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ select 1 $$;
ALTER EXTENSION plpgsql ADD FUNCTION public.f();
