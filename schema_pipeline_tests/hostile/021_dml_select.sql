-- expect: 2:1 DML
SELECT * FROM pg_class;
