-- expect: 2:1 client_encoding
SET client_encoding = 'LATIN1';
