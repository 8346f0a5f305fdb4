-- expect: 2:1 not allowed
SET LOCAL synchronous_commit = off;
