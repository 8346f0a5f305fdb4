-- expect: 2:1 untrusted
CREATE LANGUAGE plpythonu;
