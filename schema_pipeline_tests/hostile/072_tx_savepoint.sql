-- expect: 2:1 transactions
SAVEPOINT a;
