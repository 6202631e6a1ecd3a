-- synchub.sketch: accuracy against exact quantiles, merging, special
-- values, text and binary round trips, parallel aggregation.
\i test/regress_setup.sql
CREATE SCHEMA sketch_test;
SET search_path = sketch_test, public;

-- Deterministic pseudo-random uniforms in (0, 1).
CREATE FUNCTION u(i bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$ SELECT (((i * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648.0 $$;

-- 20,000 values per distribution; hour = i % 24 for the merge test.
CREATE TABLE data (dist text, i int, hour int, x double precision);
INSERT INTO data
SELECT 'uniform', i, i % 24, 1000 * u(i) FROM generate_series(1, 20000) i;
INSERT INTO data        -- lognormal(0, 1.5) by Box-Muller
SELECT 'lognormal', i, i % 24,
       exp(1.5 * sqrt(-2 * ln(u(i))) * cos(2 * pi() * u(i + 7777777))) FROM generate_series(1, 20000) i;
INSERT INTO data        -- two modes four orders of magnitude apart
SELECT 'bimodal', i, i % 24,
       CASE WHEN i % 2 = 0 THEN 9 + 2 * u(i) ELSE 90000 + 20000 * u(i) END FROM generate_series(1, 20000) i;
INSERT INTO data SELECT 'single', i, i % 24, 42.5 FROM generate_series(1, 1000) i;
INSERT INTO data        -- negative, zero and positive values
SELECT 'mixed', i, i % 24, CASE WHEN i % 10 = 0 THEN 0 ELSE (u(i) - 0.4) * 5000 END
  FROM generate_series(1, 20000) i;
INSERT INTO data SELECT 'tiny', i, i % 24, 1e-300 * (1 + u(i)) FROM generate_series(1, 1000) i;

CREATE TABLE qs (q double precision);
INSERT INTO qs VALUES (0), (0.001), (0.01), (0.1), (0.25), (0.4), (0.5), (0.75), (0.9), (0.95), (0.99), (0.999), (1);

-- Relative error against percentile_disc (the same rank definition), for
-- one sketch per distribution and for the merge of 24 hourly sketches.
CREATE VIEW errors AS
WITH whole AS (SELECT dist, synchub.sketch_agg(x) AS s FROM data GROUP BY dist),
     hourly AS (SELECT dist, hour, synchub.sketch_agg(x) AS s FROM data GROUP BY dist, hour),
     merged AS (SELECT dist, synchub.sketch_merge(s) AS s FROM hourly GROUP BY dist),
     exact AS (SELECT d.dist, qs.q, percentile_disc(qs.q) WITHIN GROUP (ORDER BY d.x) AS v
                 FROM data d CROSS JOIN qs GROUP BY d.dist, qs.q)
SELECT e.dist, e.q, e.v,
       abs(synchub.quantile(w.s, e.q) - e.v) / nullif(abs(e.v), 0) AS err_whole,
       abs(synchub.quantile(m.s, e.q) - e.v) / nullif(abs(e.v), 0) AS err_merged,
       CASE WHEN e.v = 0 THEN synchub.quantile(w.s, e.q) = 0 AND synchub.quantile(m.s, e.q) = 0 END AS zero_exact,
       w.s::text = m.s::text AS merge_equal
  FROM exact e JOIN whole w USING (dist) JOIN merged m USING (dist);

SELECT dist, count(*) AS quantiles,
       max(err_whole) <= 0.01 AS whole_within_1pct,
       max(err_merged) <= 0.01 AS merged_within_1pct,
       bool_and(zero_exact) AS zeros_exact,
       bool_and(merge_equal) AS merge_equals_whole
  FROM errors GROUP BY dist ORDER BY dist;
-- the bound is not met trivially: the errors are of the order of the bound
SELECT dist, max(err_whole) > 0.002 AS uses_the_bound FROM errors
 WHERE dist IN ('uniform', 'lognormal', 'bimodal') GROUP BY dist ORDER BY dist;
-- single value, q = 0 and q = 1 are exact
SELECT q, synchub.quantile(s, q) FROM (SELECT synchub.sketch_agg(x) s FROM data WHERE dist = 'single') t,
       (VALUES (0.0), (0.5), (1.0)) v(q);
SELECT dist, synchub.quantile(s, 0) = min AS min_exact, synchub.quantile(s, 1) = max AS max_exact,
       synchub.sketch_count(s) = n AS count_exact
  FROM (SELECT dist, synchub.sketch_agg(x) s, min(x), max(x), count(*) n FROM data GROUP BY dist) t
 ORDER BY dist;

-- Size is bounded: 2048 buckets per sign at most; values more than
-- 1.3e17 times smaller than the largest collapse into the lowest bucket,
-- quantiles above the collapsed range keep the bound.
CREATE TABLE wide AS
SELECT 10 ^ (-300 + 600 * u(i)) AS x FROM generate_series(1, 20000) i;
SELECT length(synchub.sketch_send(s)) <= 2 + 8 * 4 + 2048 * 12 AS bounded,
       abs(synchub.quantile(s, 0.99) - (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY x) FROM wide))
           / (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY x) FROM wide) <= 0.01 AS p99_within_1pct
  FROM (SELECT synchub.sketch_agg(x) s FROM wide) t;

-- NULL is skipped like in other aggregates; no values at all gives NULL
SELECT synchub.sketch_agg(x) FROM (VALUES (1.0::float8), (NULL), (3.0)) v(x);
SELECT synchub.sketch_agg(x) IS NULL AS all_null FROM (VALUES (NULL::float8), (NULL)) v(x);
SELECT synchub.sketch_agg(x) IS NULL AS no_rows FROM data WHERE false;
SELECT synchub.sketch_merge(s) FROM (VALUES (NULL::synchub.sketch), ('{"count":1,"zero":1,"min":0,"max":0}')) v(s);
-- NaN and infinities are rejected
SELECT pg_temp.err($$SELECT synchub.sketch_agg(x) FROM (VALUES (1.0::float8), ('NaN')) v(x)$$);
SELECT pg_temp.err($$SELECT synchub.sketch_agg('Infinity'::float8)$$);
SELECT pg_temp.err($$SELECT synchub.sketch_agg('-Infinity'::float8)$$);
-- negative and zero values
SELECT synchub.sketch_agg(x) FROM (VALUES (-1.0::float8), (0), (0), (-0.0), (2)) v(x);
SELECT q, synchub.quantile(s, q)
  FROM (SELECT synchub.sketch_agg(x) s FROM (VALUES (-100.0::float8), (-1), (0), (0), (5)) v(x)) t,
       (VALUES (0.0), (0.2), (0.4), (0.6), (0.8), (1.0)) v(q);

-- quantile arguments
SELECT pg_temp.err($$SELECT synchub.quantile('{"count":1,"zero":1,"min":0,"max":0}', 1.5)$$);
SELECT pg_temp.err($$SELECT synchub.quantile('{"count":1,"zero":1,"min":0,"max":0}', -0.1)$$);
SELECT pg_temp.err($$SELECT synchub.quantile('{"count":1,"zero":1,"min":0,"max":0}', 'NaN')$$);
SELECT synchub.quantile('{"count":0,"zero":0}', 0.5) IS NULL AS empty_is_null;
SELECT synchub.quantile(NULL, 0.5) IS NULL AS null_is_null;

-- sketch_union
SELECT synchub.sketch_union('{"count":1,"zero":0,"min":1,"max":1,"pos":{"0":1}}',
                            '{"count":2,"zero":1,"min":-3,"max":0,"neg":{"56":1}}');
SELECT synchub.sketch_union(NULL, '{"count":1,"zero":1,"min":0,"max":0}');
SELECT synchub.sketch_union(NULL, NULL) IS NULL AS both_null;

-- text round trip, for every distribution
SELECT dist, s::text::synchub.sketch::text = s::text AS text_round_trip
  FROM (SELECT dist, synchub.sketch_agg(x) s FROM data GROUP BY dist) t ORDER BY dist;
-- whitespace and key order are free
SELECT ' { "pos" : { "0" : 2 } , "max":1, "min" : 1,"zero":0 ,"count":2 } '::synchub.sketch;
-- invalid text
SELECT pg_temp.err($$SELECT 'nonsense'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":2,"zero":0,"min":1,"max":1,"pos":{"0":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":2,"zero":0,"min":1,"max":2,"pos":{"5":1,"0":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":1,"max":1,"pos":{"0":0,"1":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":1,"max":1,"pos":{"0":1,"4000":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":1,"max":1,"pos":{"x":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"count":1}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":"NaN","max":1,"pos":{"0":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":5,"max":1,"pos":{"0":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":-1,"max":-1,"pos":{"0":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":1,"zero":0,"min":1,"max":1,"pos":{"99999":1}}'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":0,"zero":0} x'::synchub.sketch$$);
SELECT pg_temp.err($$SELECT '{"count":0,"zero":0,"colour":1}'::synchub.sketch$$);

-- binary round trip through COPY
CREATE TABLE bin_out AS SELECT dist, synchub.sketch_agg(x) s FROM data GROUP BY dist;
INSERT INTO bin_out VALUES ('empty', '{"count":0,"zero":0}');
\copy bin_out TO 'results/sketch_binary.copy' WITH (FORMAT binary)
CREATE TABLE bin_in (LIKE bin_out);
\copy bin_in FROM 'results/sketch_binary.copy' WITH (FORMAT binary)
SELECT count(*) AS sketches, bool_and(o.s::text = i.s::text) AS binary_round_trip,
       bool_and(synchub.sketch_send(o.s) = synchub.sketch_send(i.s)) AS same_bytes
  FROM bin_out o JOIN bin_in i USING (dist);

-- A parallel plan (workers only: the leader does not take part) gives the
-- same sketches as a serial one.
CREATE TABLE serial AS
SELECT dist, synchub.sketch_agg(x)::text AS s
  FROM data GROUP BY dist;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET enable_hashagg = off;
ALTER TABLE data SET (parallel_workers = 2);
EXPLAIN (COSTS OFF) SELECT dist, synchub.sketch_agg(x) FROM data GROUP BY dist;
EXPLAIN (COSTS OFF) SELECT synchub.sketch_merge(s) FROM (SELECT synchub.sketch_agg(x) s FROM data GROUP BY dist, hour) t;
SELECT count(*) AS groups, bool_and(p.s::text = s.s) AS parallel_equals_serial
  FROM (SELECT dist, synchub.sketch_agg(x) s FROM data GROUP BY dist) p JOIN serial s USING (dist);
SELECT synchub.sketch_agg(x)::text = (SELECT synchub.sketch_merge(s::synchub.sketch)::text FROM serial)
       AS parallel_total_equals_merge
  FROM data;
RESET ALL;

DROP SCHEMA sketch_test CASCADE;
