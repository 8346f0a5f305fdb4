-- expect: 3:1 not managed by schema-pipeline yet
CREATE TABLE ok (id int);
CREATE FOREIGN DATA WRAPPER w;
