-- expect: 3:1 meta-command
CREATE TABLE t ();
\i /etc/passwd
