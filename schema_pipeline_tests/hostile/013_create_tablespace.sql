-- expect: 2:1 cluster-level
CREATE TABLESPACE fast LOCATION '/tmp';
