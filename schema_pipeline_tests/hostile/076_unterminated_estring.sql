-- expect: 2:32 unterminated E
CREATE TABLE t (a text DEFAULT E'it\'s);
