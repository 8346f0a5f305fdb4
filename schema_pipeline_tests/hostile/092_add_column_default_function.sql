-- expect: 3:44 added by ALTER TABLE
CREATE TABLE t (id int);
ALTER TABLE t ADD COLUMN leak text DEFAULT table_to_xml('pg_authid', true, false, '')::text;
