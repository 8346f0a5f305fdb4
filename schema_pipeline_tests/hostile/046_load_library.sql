-- expect: 2:1 operational
LOAD 'auto_explain';
