-- expect: 2:1 operational
LOCK TABLE t;
