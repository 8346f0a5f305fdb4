-- expect: 3:1 unterminated /*
CREATE TABLE t ();
/* outer /* inner */
CREATE TABLE u ();
