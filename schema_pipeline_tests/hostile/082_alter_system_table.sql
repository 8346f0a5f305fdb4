-- expect: 3:28 system schema
CREATE TABLE t ();
ALTER TABLE IF EXISTS ONLY information_schema.tables OWNER TO me;
