-- expect: 4:62 partition bound
CREATE TABLE p (k int) PARTITION BY RANGE (k);
CREATE TABLE loose (k int);
ALTER TABLE p ATTACH PARTITION loose FOR VALUES FROM (0) TO (pg_catalog.length(pg_read_file('/etc/hostname')));
