-- expect: 3:1 transactions
CREATE TABLE t ();
COMMIT;
