-- expect: 3:1 duplicate
CREATE TYPE s.mood AS ENUM ('a');
CREATE TYPE s.mood AS ENUM ('b');
