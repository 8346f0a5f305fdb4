-- expect: 2:1 RESET
RESET ALL;
