-- expect: 2:1 DATABASE
ALTER DATABASE app SET work_mem = '1GB';
