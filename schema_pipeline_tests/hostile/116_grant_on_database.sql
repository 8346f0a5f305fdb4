-- expect: 2:1 cluster-level
GRANT CONNECT ON DATABASE postgres TO someone;
