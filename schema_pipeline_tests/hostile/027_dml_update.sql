-- expect: 4:3 DML
CREATE TABLE t (id int);

  UPDATE t SET id = 2;
