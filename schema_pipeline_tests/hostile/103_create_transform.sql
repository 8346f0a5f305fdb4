-- expect: 2:1 not managed by schema-pipeline yet
CREATE TRANSFORM FOR int LANGUAGE sql (FROM SQL WITH FUNCTION f(internal), TO SQL WITH FUNCTION g(internal));
