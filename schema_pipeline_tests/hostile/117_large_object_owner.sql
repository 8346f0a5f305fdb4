-- expect: 2:1 is data
ALTER LARGE OBJECT 16400 OWNER TO someone;
