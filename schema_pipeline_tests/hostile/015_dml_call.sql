-- expect: 2:1 DML
CALL do_things();
