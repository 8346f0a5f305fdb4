-- expect: 2:15 system schema
DROP FUNCTION pg_catalog.lower(text);
