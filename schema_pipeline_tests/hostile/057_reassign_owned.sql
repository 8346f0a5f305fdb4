-- expect: 2:1 roles
REASSIGN OWNED BY a TO b;
