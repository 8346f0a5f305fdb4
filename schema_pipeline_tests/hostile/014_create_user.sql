-- expect: 2:1 roles
CREATE USER bob;
