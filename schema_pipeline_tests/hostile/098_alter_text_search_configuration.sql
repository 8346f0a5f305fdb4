-- expect: 2:1 system schema
ALTER TEXT SEARCH CONFIGURATION pg_catalog.english ALTER MAPPING FOR word WITH simple;
