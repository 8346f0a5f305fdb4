-- expect: 3:1 not managed by schema-pipeline yet
CREATE SCHEMA remote;
IMPORT FOREIGN SCHEMA public FROM SERVER s INTO remote;
