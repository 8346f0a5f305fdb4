-- expect: 4:1 duplicate
CREATE TABLE app.t ();
SET search_path = app;
CREATE TABLE t ();
