-- expect: 2:14 system schema
CREATE INDEX i ON pg_catalog.pg_class (relname);
