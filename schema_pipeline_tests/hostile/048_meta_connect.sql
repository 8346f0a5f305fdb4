-- expect: 2:1 meta-command
\connect other
CREATE TABLE t ();
