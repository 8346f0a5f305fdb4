-- expect: 2:1 DO blocks
DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$;
