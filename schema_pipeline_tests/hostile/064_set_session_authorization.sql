-- expect: 2:1 role
SET SESSION AUTHORIZATION postgres;
