-- expect: 2:1 meta-command
\set ON_ERROR_STOP off
