-- expect: 5:1 PROGRAM
CREATE FUNCTION public.begin() RETURNS int LANGUAGE sql AS $$ select 1 $$;
CREATE TABLE t (a int);
-- a hand-made splitter took the keyword-named function for a BEGIN ATOMIC body and missed this:
COPY t TO PROGRAM 'id > /tmp/schema_pipeline_canary';
