-- expect: 2:1 DML
VALUES (1), (2);
