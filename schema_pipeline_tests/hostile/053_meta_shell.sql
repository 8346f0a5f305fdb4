-- expect: 2:1 meta-command
\! rm -rf /
