-- synchub.campaign_metrics: equal to the exact SQL answer, serial and
-- parallel, including a campaign without deliveries and one without events.
\i test/regress_setup.sql
CREATE SCHEMA metrics_test;
SET search_path = metrics_test, public;

CREATE TABLE campaigns (id bigint PRIMARY KEY);
INSERT INTO campaigns SELECT generate_series(1, 5);   -- 5 has no events

-- Campaigns 1-3: a funnel with repeats (opens and clicks more than once
-- per lead); campaign 4: sent and bounced only, nothing delivered.
CREATE TABLE ev (campaign_id bigint, lead_id bigint, kind text);
INSERT INTO ev
SELECT c, l, k
  FROM generate_series(1, 3) c, generate_series(1, 2000) l,
       LATERAL (SELECT unnest(ARRAY['sent'] ||
                    CASE WHEN l % 10 = 0 THEN ARRAY['bounced'] ELSE ARRAY['delivered'] END ||
                    CASE WHEN l % 10 <> 0 AND l % (c + 1) = 0 THEN ARRAY['opened', 'opened'] ELSE '{}' END ||
                    CASE WHEN l % 10 <> 0 AND l % (3 * c + 1) = 0 THEN ARRAY['opened', 'clicked', 'clicked'] ELSE '{}' END ||
                    CASE WHEN l % 10 <> 0 AND l % 37 = c THEN ARRAY['replied'] ELSE '{}' END) AS k) x;
INSERT INTO ev SELECT 4, l, 'sent' FROM generate_series(1, 300) l;
INSERT INTO ev SELECT 4, l, 'bounced' FROM generate_series(1, 300, 3) l;
-- a lead sent twice, and events without a lead: counted, never unique
INSERT INTO ev VALUES (1, 1, 'sent'), (2, NULL, 'opened'), (2, NULL, 'opened');

-- The exact answer in plain SQL.
CREATE VIEW exact AS
SELECT c.id AS campaign_id,
       jsonb_build_object(
         'counts', jsonb_build_object(
            'sent', count(*) FILTER (WHERE e.kind = 'sent'),
            'delivered', count(*) FILTER (WHERE e.kind = 'delivered'),
            'opened', count(*) FILTER (WHERE e.kind = 'opened'),
            'clicked', count(*) FILTER (WHERE e.kind = 'clicked'),
            'replied', count(*) FILTER (WHERE e.kind = 'replied'),
            'bounced', count(*) FILTER (WHERE e.kind = 'bounced')),
         'unique', jsonb_build_object(
            'sent', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'sent'),
            'delivered', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'delivered'),
            'opened', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'opened'),
            'clicked', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'clicked'),
            'replied', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'replied'),
            'bounced', count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'bounced')),
         'open_rate', to_jsonb(count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'opened')::float8 / den),
         'click_rate', to_jsonb(count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'clicked')::float8 / den),
         'reply_rate', to_jsonb(count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'replied')::float8 / den),
         'bounce_rate', to_jsonb(count(DISTINCT e.lead_id) FILTER (WHERE e.kind = 'bounced')::float8 / den)
       ) AS metrics
  FROM campaigns c
  LEFT JOIN ev e ON e.campaign_id = c.id
  LEFT JOIN LATERAL (
        SELECT nullif(coalesce(nullif(count(DISTINCT d.lead_id) FILTER (WHERE d.kind = 'delivered'), 0),
                               count(DISTINCT d.lead_id) FILTER (WHERE d.kind = 'sent')), 0) AS den
          FROM ev d WHERE d.campaign_id = c.id) r ON true
 GROUP BY c.id, r.den;

CREATE TABLE serial AS
SELECT c.id AS campaign_id, synchub.campaign_metrics(e.kind, e.lead_id) AS metrics
  FROM campaigns c LEFT JOIN ev e ON e.campaign_id = c.id GROUP BY c.id;

SELECT s.campaign_id, s.metrics = x.metrics AS equals_exact
  FROM serial s JOIN exact x USING (campaign_id) ORDER BY 1;
-- the shapes: a full funnel, nothing delivered (rates over sent), no events
SELECT campaign_id, jsonb_pretty(metrics) FROM serial WHERE campaign_id IN (1, 4, 5) ORDER BY 1;

-- NULL kinds are skipped; unknown kinds are an error
SELECT synchub.campaign_metrics(k, l) -> 'counts' AS counts
  FROM (VALUES ('sent', 1::bigint), (NULL, 2), ('sent', NULL)) v(k, l);
SELECT pg_temp.err($$SELECT synchub.campaign_metrics(k, 1) FROM (VALUES ('sent'), ('unsubscribed')) v(k)$$);
SELECT pg_temp.err($$SELECT synchub.campaign_metrics('Sent', 1)$$);
-- no rows at all: zero counts and null rates
SELECT synchub.campaign_metrics(kind, lead_id) FROM ev WHERE false;

CREATE TABLE whole_serial AS SELECT synchub.campaign_metrics(kind, lead_id) AS metrics FROM ev;

-- A parallel plan in which only workers aggregate (so every state goes
-- through serialise, deserialise and combine) gives the same answer.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
ALTER TABLE ev SET (parallel_workers = 2);
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT campaign_id, synchub.campaign_metrics(kind, lead_id) FROM ev GROUP BY campaign_id;
SELECT count(*) AS campaigns, bool_and(p.metrics = s.metrics) AS parallel_equals_serial
  FROM (SELECT campaign_id, synchub.campaign_metrics(kind, lead_id) AS metrics
          FROM ev GROUP BY campaign_id) p
  JOIN serial s USING (campaign_id);
EXPLAIN (COSTS OFF) SELECT synchub.campaign_metrics(kind, lead_id) FROM ev;
SELECT synchub.campaign_metrics(kind, lead_id) = (SELECT metrics FROM whole_serial)
       AS parallel_whole_table
  FROM ev;
RESET ALL;

DROP SCHEMA metrics_test CASCADE;
