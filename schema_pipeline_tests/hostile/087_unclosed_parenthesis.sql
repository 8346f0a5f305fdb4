-- expect: 3:22 syntax error
CREATE TABLE ok ();
CREATE TABLE t (a int;
CREATE TABLE u ();
