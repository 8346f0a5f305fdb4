-- expect: 2:1 cluster-level
CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p;
