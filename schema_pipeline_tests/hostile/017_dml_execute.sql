-- expect: 2:1 DML
EXECUTE plan1;
