-- expect: 2:23 without a matching
CREATE TABLE t (a int));
