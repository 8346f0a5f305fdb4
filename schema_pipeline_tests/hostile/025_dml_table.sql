-- expect: 2:1 DML
TABLE t;
