-- expect: 2:32 unterminated quoted string
CREATE TABLE t (a text DEFAULT E'it\'s);
