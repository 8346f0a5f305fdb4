-- expect: 2:1 COPY
COPY t (a) FROM stdin;
