-- expect: 2:1 transactions
BEGIN;
CREATE TABLE t ();
COMMIT;
