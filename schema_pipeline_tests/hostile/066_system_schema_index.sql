-- expect: 2:19 system schema
CREATE INDEX i ON pg_catalog.pg_class (relname);
