-- expect: 2:1 not managed by schema-pipeline yet
CREATE OPERATOR FAMILY fam USING btree;
