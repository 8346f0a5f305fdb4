-- expect: 4:29 standard_conforming_strings is off here
SET statement_timeout = 0;
SET standard_conforming_strings = off;
COMMENT ON SCHEMA public IS 'C:\temp';
