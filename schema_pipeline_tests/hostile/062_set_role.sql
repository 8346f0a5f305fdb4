-- expect: 2:1 role
SET ROLE postgres;
