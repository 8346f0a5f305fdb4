-- expect: 2:1 transactions
ROLLBACK;
