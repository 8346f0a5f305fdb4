-- expect: 2:1 operational
CHECKPOINT;
