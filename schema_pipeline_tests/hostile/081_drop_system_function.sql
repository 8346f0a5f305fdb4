-- expect: 2:1 system schema
DROP FUNCTION pg_catalog.lower(text);
