-- expect: 2:1 DML
SELECT pg_catalog.set_config('role', 'postgres', false);
