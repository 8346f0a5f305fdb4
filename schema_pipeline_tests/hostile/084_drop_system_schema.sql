-- expect: 2:13 schema
DROP SCHEMA pg_catalog CASCADE;
