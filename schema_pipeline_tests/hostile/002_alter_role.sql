-- expect: 2:1 roles
ALTER ROLE app SUPERUSER;
