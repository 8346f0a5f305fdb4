-- expect: 3:1 syntax error
CREATE TABLE t ();
hello world;
