-- expect: 3:1 not managed by schema-pipeline yet
CREATE TABLE ok (id int);
CREATE OPERATOR CLASS cls FOR TYPE int4 USING btree AS OPERATOR 1 <, FUNCTION 1 btint4cmp(int4, int4);
