-- expect: 2:1 built-in pg_catalog.english_stem
DROP TEXT SEARCH DICTIONARY IF EXISTS english_stem;
