-- Keyset pagination: every refused argument, with its SQLSTATE, and
-- attempts to inject SQL through order_by and filter.
\i test/regress_setup.sql
CREATE SCHEMA pagination_errors;
SET search_path = pagination_errors, public;
CREATE TABLE t (id int PRIMARY KEY, name text, doc json, "Mixed" int);
INSERT INTO t SELECT g, 'n' || g, '{}', g FROM generate_series(1, 5) g;
CREATE TABLE u (id int PRIMARY KEY, name text);
INSERT INTO u SELECT g, 'n' || g FROM generate_series(1, 5) g;

-- page_size: 1 to 10000
SELECT pg_temp.err($$SELECT synchub.paginate('t', 0)$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', -1)$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 10001)$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', NULL)$$);
SELECT jsonb_array_length(synchub.paginate('t', 10000)->'data') AS max_page_size_ok;

-- order_by: unknown columns, bad directions, syntax
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'nope')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'mixed')$$);
SELECT jsonb_array_length(synchub.paginate('t', order_by => '"Mixed" DESC')->'data') AS quoted_ok;
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'ctid')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id DESCENDING')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id UP')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id NULLS')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id NULLS MIDDLE')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => '')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id,')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'name, name DESC')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'doc')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => '"unterminated')$$);

-- injection attempts through order_by
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id; DROP TABLE t')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id) OR (1=1')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id -- comment')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id /* comment */')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'name''')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'lower(name)')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => 'id DESC, (SELECT 1)')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => '"id; DROP TABLE t"')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', order_by => '"id"" DESC"')$$);
SELECT count(*) AS t_survives FROM t;

-- filter: not an object, unknown columns, values of the wrong type
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '[1]')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '"id"')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '{"nope": 1}')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '{"id": "abc"}')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '{"doc": {}}')$$);
-- injection attempts through filter: keys are column names, values parameters
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '{"id = 1 OR true; --": 1}')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', filter => '{"id\" = 1 OR \"id": 1}')$$);
SELECT synchub.paginate('t', filter => '{"name": "n1'' OR ''1''=''1"}')->'data' AS no_rows;
SELECT synchub.paginate('t', filter => '{"name": "n1"}')->'data' AS one_row;

-- relations that cannot be paginated
CREATE TABLE nokey (a int, b int);
CREATE TABLE nullkey (a int UNIQUE, b int);
CREATE VIEW v AS SELECT * FROM t;
CREATE SEQUENCE s;
SELECT pg_temp.err($$SELECT synchub.paginate('nokey')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('nullkey', order_by => 'a')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('v')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('s')$$);
SELECT pg_temp.err($$SELECT synchub.paginate(NULL)$$);
SELECT pg_temp.err($$SELECT synchub.paginate(0::oid::regclass)$$);

-- cursors: malformed, tampered, foreign
SELECT synchub.paginate('t', 2)->>'next_cursor' AS c \gset
SELECT synchub.paginate('t', 2, order_by => 'name')->>'next_cursor' AS c_name \gset
SELECT synchub.paginate('t', 2, :'c')->'data' AS second_page;
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, 'not a cursor!')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, 'AAAA')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c' || $$=')$$);
-- every single-character change of the cursor is refused
SELECT count(*) AS positions,
       count(*) FILTER (WHERE pg_temp.err(format('SELECT synchub.paginate(''t'', 2, %L)', tampered)) LIKE '22023: invalid cursor |%') AS refused
  FROM (SELECT overlay(:'c' PLACING CASE WHEN substr(:'c', i, 1) = 'A' THEN 'B' ELSE 'A' END FROM i FOR 1) AS tampered
          FROM generate_series(1, length(:'c')) i) x;
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || overlay(:'c' PLACING CASE WHEN substr(:'c', 12, 1) = 'A' THEN 'B' ELSE 'A' END FROM 12 FOR 1) || $$')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || left(:'c', 8) || $$')$$);
-- another relation, order or filter
SELECT pg_temp.err($$SELECT synchub.paginate('u', 2, '$$ || :'c' || $$')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c' || $$', 'id DESC')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c' || $$', 'name')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c_name' || $$')$$);
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c' || $$', filter => '{"name": "n1"}')$$);
-- the same order spelled differently, and another page size, are the same binding
SELECT synchub.paginate('t', 3, :'c', ' ID asc ')->'data' = synchub.paginate('t', 3, :'c')->'data' AS same_order;
-- a cursor from a re-created extension (new key) is refused
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
DROP EXTENSION synchub CASCADE;
CREATE EXTENSION synchub;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
SELECT pg_temp.err($$SELECT synchub.paginate('t', 2, '$$ || :'c' || $$')$$);

-- privileges of the caller apply
CREATE ROLE regress_pagination_nobody;
GRANT USAGE ON SCHEMA synchub, pagination_errors TO regress_pagination_nobody;
GRANT EXECUTE ON FUNCTION synchub.paginate(regclass, integer, text, text, jsonb) TO regress_pagination_nobody;
SET ROLE regress_pagination_nobody;
SELECT pg_temp.err($$SELECT synchub.paginate('t')$$);
SELECT pg_temp.err($$SELECT * FROM synchub.secrets$$);
RESET ROLE;

DROP SCHEMA pagination_errors CASCADE;
DROP OWNED BY regress_pagination_nobody;
DROP ROLE regress_pagination_nobody;
