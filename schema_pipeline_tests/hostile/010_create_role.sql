-- expect: 2:1 roles
CREATE ROLE hacker SUPERUSER LOGIN PASSWORD 'x';
