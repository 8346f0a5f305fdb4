-- expect: 2:14 system schema
CREATE TABLE pg_catalog.evil (a int);
