-- expect: 2:23 syntax error
CREATE TABLE t (a int));
