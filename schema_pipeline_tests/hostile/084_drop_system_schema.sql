-- expect: 2:1 system schema
DROP SCHEMA pg_catalog CASCADE;
