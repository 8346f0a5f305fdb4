-- expect: 2:1 DML
DELETE FROM t;
