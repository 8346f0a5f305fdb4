-- expect: 2:1 roles
CREATE GROUP staff;
