-- expect: 2:1 syntax error
42;
