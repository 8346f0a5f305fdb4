-- expect: 3:1 operational
CREATE TABLE t ();
NOTIFY chan, 'x';
