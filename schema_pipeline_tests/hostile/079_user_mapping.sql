-- expect: 2:1 credentials
CREATE USER MAPPING FOR app SERVER s OPTIONS (password 'secret');
