-- expect: 2:14 unterminated quoted identifier
CREATE TABLE "t (a int);
