-- expect: 3:1 not managed by schema-pipeline yet
CREATE TABLE ok (id int);
CREATE TEXT SEARCH PARSER prs (START = prsd_start, GETTOKEN = prsd_nexttoken, END = prsd_end, LEXTYPES = prsd_lextype);
