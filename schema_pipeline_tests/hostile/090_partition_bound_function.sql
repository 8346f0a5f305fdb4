-- expect: 3:47 partition bound
CREATE TABLE p (k int) PARTITION BY LIST (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES IN (pg_terminate_backend(1)::int);
