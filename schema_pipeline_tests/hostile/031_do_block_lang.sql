-- expect: 3:1 DO blocks
-- comment
DO LANGUAGE plpgsql $x$ BEGIN NULL; END $x$;
