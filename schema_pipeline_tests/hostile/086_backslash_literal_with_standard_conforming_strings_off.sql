-- expect: 3:1 standard_conforming_strings
SET statement_timeout = 0;
SET standard_conforming_strings = off;
