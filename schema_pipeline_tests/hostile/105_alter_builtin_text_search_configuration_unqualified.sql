-- expect: 2:1 built-in pg_catalog.english
ALTER TEXT SEARCH CONFIGURATION english ALTER MAPPING FOR word WITH simple;
