-- expect: 4:1 meta-command
CREATE TABLE t (
  a int
\gexec
);
