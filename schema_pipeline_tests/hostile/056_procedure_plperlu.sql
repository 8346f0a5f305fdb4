-- expect: 2:22 untrusted
CREATE PROCEDURE p() LANGUAGE 'plperlu' AS $$ system('x') $$;
