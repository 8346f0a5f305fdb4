-- expect: 2:1 ALTER SYSTEM
ALTER SYSTEM SET shared_buffers = '1GB';
