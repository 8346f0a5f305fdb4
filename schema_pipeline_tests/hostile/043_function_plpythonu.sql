-- expect: 2:63 untrusted
CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ import os $$ LANGUAGE plpython3u;
