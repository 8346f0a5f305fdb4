-- expect: 2:1 DML
PREPARE p AS SELECT 1;
