-- expect: 2:1 meta-command
\copy t from '/etc/passwd'
