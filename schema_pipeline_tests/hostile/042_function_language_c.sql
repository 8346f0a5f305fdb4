-- expect: 3:5 untrusted
CREATE FUNCTION f() RETURNS int
    LANGUAGE c AS '/lib/x.so', 'f';
