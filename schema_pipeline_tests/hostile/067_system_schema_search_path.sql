-- expect: 3:14 system schema
SET search_path = pg_catalog;
CREATE TABLE evil ();
