-- expect: 3:1 duplicate
CREATE INDEX i ON t (a);
CREATE INDEX i ON t (b);
