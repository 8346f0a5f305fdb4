-- expect: 2:1 operational
REFRESH MATERIALIZED VIEW mv;
