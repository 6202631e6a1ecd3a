-- Hourly rollups: incremental refresh, late events, campaign_dashboard
-- against exact SQL over the raw events, the distinct sketch past its exact
-- range, API latency and queue health.
-- A fresh extension so that the event sequence and watermark start at zero
-- (the worker, stopped first, would hold locks on the extension's tables).
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
DROP EXTENSION synchub CASCADE;
CREATE EXTENSION synchub;
\i test/regress_setup.sql
SET synchub.notify = off;
SET TimeZone = 'UTC';
CREATE SCHEMA rollup_test;
SET search_path = rollup_test, public;

SHOW synchub.rollup_interval;

-- The exact dashboard (without response_seconds) from the raw events: the
-- UTC hours from since (rounded down to the hour) to until.
CREATE FUNCTION exact_dashboard(cid bigint, since timestamptz, until timestamptz) RETURNS jsonb
LANGUAGE sql STABLE AS $$
WITH e AS (
    SELECT e.*, date_trunc('hour', e.at, 'UTC') AS hour FROM synchub.events e
     WHERE e.campaign_id = cid
       AND date_trunc('hour', e.at, 'UTC') >= date_trunc('hour', since, 'UTC')
       AND date_trunc('hour', e.at, 'UTC') < until),
per_hour AS (
    SELECT hour,
           jsonb_build_object(
             'sent', count(*) FILTER (WHERE kind = 'sent'),
             'delivered', count(*) FILTER (WHERE kind = 'delivered'),
             'opened', count(*) FILTER (WHERE kind = 'opened'),
             'clicked', count(*) FILTER (WHERE kind = 'clicked'),
             'replied', count(*) FILTER (WHERE kind = 'replied'),
             'bounced', count(*) FILTER (WHERE kind = 'bounced')) AS counts,
           jsonb_build_object(
             'sent', count(DISTINCT lead_id) FILTER (WHERE kind = 'sent'),
             'delivered', count(DISTINCT lead_id) FILTER (WHERE kind = 'delivered'),
             'opened', count(DISTINCT lead_id) FILTER (WHERE kind = 'opened'),
             'clicked', count(DISTINCT lead_id) FILTER (WHERE kind = 'clicked'),
             'replied', count(DISTINCT lead_id) FILTER (WHERE kind = 'replied'),
             'bounced', count(DISTINCT lead_id) FILTER (WHERE kind = 'bounced')) AS uniq
      FROM e GROUP BY hour),
total AS (
    SELECT count(*) FILTER (WHERE kind = 'sent') AS sent,
           count(*) FILTER (WHERE kind = 'delivered') AS delivered,
           count(*) FILTER (WHERE kind = 'opened') AS opened,
           count(*) FILTER (WHERE kind = 'clicked') AS clicked,
           count(*) FILTER (WHERE kind = 'replied') AS replied,
           count(*) FILTER (WHERE kind = 'bounced') AS bounced,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'sent') AS u_sent,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'delivered') AS u_delivered,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'opened') AS u_opened,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'clicked') AS u_clicked,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'replied') AS u_replied,
           count(DISTINCT lead_id) FILTER (WHERE kind = 'bounced') AS u_bounced
      FROM e)
SELECT jsonb_build_object(
         'counts', jsonb_build_object('sent', t.sent, 'delivered', t.delivered, 'opened', t.opened,
                                      'clicked', t.clicked, 'replied', t.replied, 'bounced', t.bounced),
         'unique', jsonb_build_object('sent', t.u_sent, 'delivered', t.u_delivered,
                                      'opened', t.u_opened, 'clicked', t.u_clicked,
                                      'replied', t.u_replied, 'bounced', t.u_bounced),
         'open_rate', to_jsonb(t.u_opened::float8 / d.den),
         'click_rate', to_jsonb(t.u_clicked::float8 / d.den),
         'reply_rate', to_jsonb(t.u_replied::float8 / d.den),
         'bounce_rate', to_jsonb(t.u_bounced::float8 / d.den),
         'hourly', coalesce((SELECT jsonb_agg(jsonb_build_object('hour', h.hour, 'counts', h.counts,
                                                                 'unique', h.uniq) ORDER BY h.hour)
                               FROM per_hour h), '[]'))
  FROM total t, LATERAL (SELECT nullif(coalesce(nullif(t.u_delivered, 0), t.u_sent), 0) AS den) d
$$;

-- Response time (seconds from the lead's first send) of opens, clicks and
-- replies in range, exactly.
CREATE FUNCTION exact_response(cid bigint, since timestamptz, until timestamptz, q float8) RETURNS float8
LANGUAGE sql STABLE AS $$
SELECT percentile_disc(q) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - s.first_sent)::float8)
  FROM synchub.events e
  JOIN (SELECT campaign_id, lead_id, min(at) AS first_sent FROM synchub.events
         WHERE kind = 'sent' GROUP BY 1, 2) s USING (campaign_id, lead_id)
 WHERE e.campaign_id = cid AND e.kind IN ('opened', 'clicked', 'replied')
   AND date_trunc('hour', e.at, 'UTC') >= date_trunc('hour', since, 'UTC')
   AND date_trunc('hour', e.at, 'UTC') < until
$$;

CREATE FUNCTION check_dashboard(cid bigint, since timestamptz, until timestamptz,
                                OUT equals_exact boolean, OUT hours int,
                                OUT p50_within_1pct boolean, OUT p95_within_1pct boolean,
                                OUT responses bigint)
LANGUAGE sql STABLE AS $$
SELECT d - 'response_seconds' = exact_dashboard(cid, since, until),
       jsonb_array_length(d -> 'hourly'),
       abs((d #>> '{response_seconds,p50}')::float8 - exact_response(cid, since, until, 0.5))
           <= 0.01 * abs(exact_response(cid, since, until, 0.5)),
       abs((d #>> '{response_seconds,p95}')::float8 - exact_response(cid, since, until, 0.95))
           <= 0.01 * abs(exact_response(cid, since, until, 0.95)),
       (d #>> '{response_seconds,count}')::bigint
  FROM synchub.campaign_dashboard(cid, since, until) d
$$;

-- Campaigns 1 and 2, 600 leads each, sends spread over six hours; then
-- deliveries, bounces, opens, clicks and replies.
CREATE TABLE leads AS
SELECT c AS campaign_id, l AS lead_id,
       timestamptz '2026-01-01 00:00' + (l % 6) * interval '1 hour' + (l % 60) * interval '1 minute' AS sent_at
  FROM generate_series(1, 2) c, generate_series(1, 600) l;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT campaign_id, lead_id, 'sent', sent_at FROM leads;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT campaign_id, lead_id, CASE WHEN lead_id % 10 = 0 THEN 'bounced' ELSE 'delivered' END,
       sent_at + interval '1 minute' FROM leads;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT campaign_id, lead_id, 'opened', sent_at + interval '20 minutes' + lead_id * interval '7 seconds'
  FROM leads WHERE lead_id % 10 <> 0 AND lead_id % (campaign_id + 1) = 0;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT campaign_id, lead_id, k, sent_at + interval '50 minutes' + lead_id * interval '3 seconds'
  FROM leads, unnest(ARRAY['opened', 'clicked']) k
 WHERE lead_id % 10 <> 0 AND lead_id % (3 * campaign_id) = 0;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT campaign_id, lead_id, 'replied', sent_at + interval '5 hours' + lead_id * interval '1 minute'
  FROM leads WHERE lead_id % 10 <> 0 AND lead_id % 13 = campaign_id;

SELECT count(*) AS events FROM synchub.events;
SELECT synchub.refresh_rollups() AS processed;
SELECT last_seq = (SELECT max(seq) FROM synchub.events) AS watermark_at_end FROM synchub.rollup_watermark;
SELECT synchub.refresh_rollups() AS nothing_new;
SELECT count(*) AS rollup_rows, sum(sent + delivered + opened + clicked + replied + bounced) AS events
  FROM synchub.campaign_rollups;

SELECT c, (check_dashboard(c, '2026-01-01', '2026-01-02')).* FROM generate_series(1, 2) c;
SELECT jsonb_pretty(synchub.campaign_dashboard(1, '2026-01-01', '2026-01-02') - 'hourly');
SELECT jsonb_pretty(synchub.campaign_dashboard(1, '2026-01-01', '2026-01-02') -> 'hourly' -> 0);
-- a part of the range; since is rounded down to its hour
SELECT (check_dashboard(1, '2026-01-01 02:30', '2026-01-01 05:00')).*;
-- nothing in range, and a campaign without events
SELECT synchub.campaign_dashboard(1, '2025-01-01', '2025-01-02');
SELECT (check_dashboard(3, '2026-01-01', '2026-01-02')).equals_exact;

-- Late events: inserted after the refresh, some for hours already rolled
-- up, plus a new campaign.  Only they are read, and the old hours change.
SELECT sent, delivered, opened FROM synchub.campaign_rollups
 WHERE campaign_id = 1 AND hour = '2026-01-01 00:00';
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 1, lead_id, 'opened', sent_at + interval '2 minutes' FROM leads
 WHERE campaign_id = 1 AND lead_id % 6 = 0 AND lead_id <= 300;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 1, lead_id + 10000, 'sent', timestamptz '2026-01-01 00:10' FROM leads
 WHERE campaign_id = 1 AND lead_id <= 40;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 3, l, 'sent', timestamptz '2026-01-01 07:00' + l * interval '1 second' FROM generate_series(1, 25) l;
SELECT synchub.refresh_rollups() AS processed_late;
SELECT sent, delivered, opened FROM synchub.campaign_rollups
 WHERE campaign_id = 1 AND hour = '2026-01-01 00:00';
SELECT c, (check_dashboard(c, '2026-01-01', '2026-01-02')).* FROM generate_series(1, 3) c;
SELECT (check_dashboard(1, '2026-01-01 00:00', '2026-01-01 01:00')).equals_exact AS first_hour;

-- Several days, and ranges cut at hours inside them.
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 5, l, 'sent', timestamptz '2026-01-03 00:00' + (l % 96) * interval '1 hour' + (l % 50) * interval '1 minute'
  FROM generate_series(1, 800) l;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 5, l, k, timestamptz '2026-01-03 00:05' + (l % 96) * interval '1 hour' + (l % 7) * interval '3 hours'
  FROM generate_series(1, 800) l, unnest(ARRAY['delivered', 'opened']) k
 WHERE l % 3 <> 0;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 5, l, CASE WHEN l % 17 = 0 THEN 'replied' ELSE 'clicked' END,
       timestamptz '2026-01-03 00:10' + (l % 96) * interval '1 hour' + (l % 11) * interval '4 hours'
  FROM generate_series(1, 800) l
 WHERE l % 5 = 0;
SELECT synchub.refresh_rollups() AS processed_days;
CREATE TABLE day_ranges (since timestamptz, until timestamptz);
INSERT INTO day_ranges VALUES
    ('2026-01-03', '2026-01-08'),              -- whole days only
    ('2026-01-03 05:30', '2026-01-05 13:00'),  -- cut inside the first and last day
    ('2026-01-03', '2026-01-04 23:00'),        -- the last hour of a day left out
    ('2026-01-03', '2026-01-04 23:30'),        -- ... and taken in
    ('2026-01-04 01:00', '2026-01-05 00:00'),  -- one day without its first hour
    ('2026-01-04 10:00', '2026-01-04 12:00');  -- two hours
SELECT since, until, (check_dashboard(5, since, until)).* FROM day_ranges ORDER BY since, until;
-- a late open and a late send on an old day
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
VALUES (5, 3, 'opened', '2026-01-04 08:15'), (5, 5000, 'sent', '2026-01-04 09:00');
SELECT synchub.refresh_rollups() AS processed_late_days;
SELECT since, until, (check_dashboard(5, since, until)).equals_exact FROM day_ranges ORDER BY since, until;

-- range errors
SELECT pg_temp.err($$SELECT synchub.campaign_dashboard(1, '2026-01-02', '2026-01-01')$$);
SELECT pg_temp.err($$SELECT synchub.campaign_dashboard(1, '2026-01-01', '2026-01-01')$$);
SELECT pg_temp.err($$SELECT synchub.campaign_dashboard(1, NULL, '2026-01-01')$$);

-- Past 2048 distinct leads a campaign hour's distinct sketch is a
-- HyperLogLog: counts stay exact, uniques within 2% (standard error 0.81%).
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 9, l, 'sent', timestamptz '2026-01-02 10:00' + (l % 3600) * interval '1 second'
  FROM generate_series(1, 6000) l;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 9, l, 'sent', timestamptz '2026-01-02 11:00' + (l % 3600) * interval '1 second'
  FROM generate_series(3001, 9000) l;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 9, l, 'delivered', timestamptz '2026-01-02 11:30' FROM generate_series(1, 2048) l;
SELECT synchub.refresh_rollups() AS processed_large;
WITH d AS (SELECT synchub.campaign_dashboard(9, '2026-01-02', '2026-01-03') AS d)
SELECT (d #>> '{counts,sent}')::int AS sent,
       abs((d #>> '{unique,sent}')::int - 9000) <= 0.02 * 9000 AS unique_sent_within_2pct,
       (d #>> '{unique,delivered}')::int AS unique_delivered_exact,
       abs((d #>> '{hourly,0,unique,sent}')::int - 6000) <= 0.02 * 6000 AS hour_within_2pct
  FROM d;

-- API latency per integration and hour (one statement: one hour)
SELECT count(synchub.record_api_call(7, 50 + (i * 37) % 400,
                                     CASE WHEN i % 10 = 0 THEN 503 WHEN i % 25 = 1 THEN 429
                                          WHEN i % 50 = 2 THEN 0 ELSE 200 END))
  FROM generate_series(1, 200) i;
SELECT sum(requests) AS requests, sum(errors) AS errors, sum(rate_limited) AS rate_limited,
       abs(synchub.quantile(synchub.sketch_merge(latency), 0.5)
           - (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY 50 + (i * 37) % 400)
                FROM generate_series(1, 200) i)) <= 0.01 * 250 AS p50_within_1pct,
       synchub.quantile(synchub.sketch_merge(latency), 1) AS max_ms
  FROM synchub.api_latency WHERE integration_id = 7;
SELECT pg_temp.err($$SELECT synchub.record_api_call(7, -1, 200)$$);
SELECT pg_temp.err($$SELECT synchub.record_api_call(7, 'NaN', 200)$$);
SELECT pg_temp.err($$SELECT synchub.record_api_call(7, NULL, 200)$$);
SELECT pg_temp.err($$SELECT synchub.record_api_call(NULL, 5, 200)$$);

-- queue health: both queue tables; the oldest due pending job's age
SELECT synchub.enqueue('health_probe', run_at => now() - interval '2 hours') > 0 AS enqueued;
SELECT table_name, n_live_tup >= 0 AS live, n_dead_tup >= 0 AS dead, total_bytes > 0 AS sized,
       oldest_pending_age >= interval '2 hours' AS oldest_pending
  FROM synchub.queue_health ORDER BY table_name;

-- The grants of docs/metrics.md, exactly: a role that refreshes the rollups
-- and one that reads dashboards.
CREATE ROLE regress_mr_refresh;
CREATE ROLE regress_mr_reader;
GRANT USAGE ON SCHEMA synchub TO regress_mr_refresh, regress_mr_reader;
GRANT EXECUTE ON FUNCTION synchub.refresh_rollups(), synchub._hll_agg(bigint), synchub._hll_union(bytea, bytea),
    synchub._hll_count(bytea), synchub.sketch_agg(double precision),
    synchub.sketch_union(synchub.sketch, synchub.sketch) TO regress_mr_refresh;
GRANT SELECT, UPDATE ON synchub.events TO regress_mr_refresh;
GRANT SELECT, INSERT, UPDATE ON synchub.campaign_rollups, synchub.rollup_watermark TO regress_mr_refresh;
GRANT EXECUTE ON FUNCTION synchub.campaign_dashboard(bigint, timestamptz, timestamptz),
    synchub._dashboard_agg(timestamptz, bigint, bigint, bigint, bigint, bigint, bigint,
                           bigint, bigint, bigint, bigint, bigint, bigint,
                           bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) TO regress_mr_reader;
GRANT SELECT ON synchub.campaign_rollups TO regress_mr_reader;
INSERT INTO synchub.events (campaign_id, lead_id, kind, at)
SELECT 900, i % 7, CASE WHEN i % 3 = 0 THEN 'opened' ELSE 'sent' END, '2026-03-01 10:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 30) i;
SET ROLE regress_mr_refresh;
SELECT synchub.refresh_rollups() > 0 AS refreshed;
RESET ROLE;
SET ROLE regress_mr_reader;
SELECT d->'counts' AS counts, d->'unique' AS uniq
  FROM synchub.campaign_dashboard(900, '2026-03-01', '2026-03-02') d;
RESET ROLE;
DROP OWNED BY regress_mr_refresh, regress_mr_reader;
DROP ROLE regress_mr_refresh, regress_mr_reader;

-- Only in READ COMMITTED: under REPEATABLE READ or SERIALIZABLE the
-- snapshot predates the lock on synchub.events, and an event committed while
-- the lock was awaited would fall behind the watermark.  Refused; the
-- pending event stays for the next refresh.
INSERT INTO synchub.events (campaign_id, lead_id, kind, at) VALUES (901, 1, 'sent', '2026-03-01 10:00+00');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.err('SELECT synchub.refresh_rollups()');
ROLLBACK;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT pg_temp.err('SELECT synchub.refresh_rollups()');
ROLLBACK;
SELECT last_seq < (SELECT max(seq) FROM synchub.events) AS event_pending FROM synchub.rollup_watermark;
BEGIN ISOLATION LEVEL READ COMMITTED;
SELECT synchub.refresh_rollups() AS read_committed_processed;
COMMIT;
SELECT last_seq = (SELECT max(seq) FROM synchub.events) AS watermark_at_end FROM synchub.rollup_watermark;

DROP SCHEMA rollup_test CASCADE;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
