-- expect: 3:16 never closed
CREATE TABLE ok ();
CREATE TABLE t (a int;
CREATE TABLE u ();
