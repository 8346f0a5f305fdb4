-- expect: 2:1 transactions
START TRANSACTION;
