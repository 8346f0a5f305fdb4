-- expect: 3:1 duplicate
CREATE TABLE t (a int);
CREATE TABLE public.t (b int);
