-- expect: 2:1 roles
DROP ROLE app;
