-- expect: 2:1 DML
SELECT pg_sleep(100);
