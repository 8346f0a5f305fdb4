-- expect: 2:1 not managed by schema-pipeline yet
CREATE CONVERSION conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
