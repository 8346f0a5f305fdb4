-- expect: 2:1 cluster-level
ALTER DATABASE template1 OWNER TO someone;
