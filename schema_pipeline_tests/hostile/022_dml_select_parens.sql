-- expect: 2:1 DML
(SELECT 1);
