-- expect: 2:1 roles
DROP OWNED BY a;
