-- expect: 2:1 not allowed
SET work_mem = '1GB';
