-- expect: 2:1 operational
VACUUM FULL;
