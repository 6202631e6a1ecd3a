-- Sync execution helpers: the rate key of a job, the rate windows the
-- worker enforces per integration, and the integration_health view.
\i test/regress_setup.sql
SET synchub.notify = off;
SET TimeZone = 'UTC';
CREATE ROLE regress_sh_app;
CREATE ROLE regress_sh_other;
GRANT USAGE ON SCHEMA synchub TO regress_sh_app, regress_sh_other;
GRANT SELECT ON synchub.integration_health TO regress_sh_app, regress_sh_other;
GRANT EXECUTE ON FUNCTION synchub._circuits(), synchub.quantile(synchub.sketch, double precision),
    synchub.sketch_merge(synchub.sketch) TO regress_sh_app, regress_sh_other;

SELECT synchub.create_integration('sh_hs', 'hubspot', 'http://127.0.0.1:9', '{"token": "sh-secret"}') > 0 AS created;
SELECT synchub.create_integration('sh_sf', 'salesforce', 'http://127.0.0.1:9', '{"token": "sh-secret"}',
    '{"rate_limit": [{"requests": 100, "per_seconds": 0.5}, {"requests": 1000, "per_seconds": 3600}]}') > 0 AS created;
SELECT synchub.create_integration('sh_pd', 'pipedrive', 'http://127.0.0.1:9', '{"token": "sh-secret"}',
    '{"rate_limit": {"requests": 7, "per_seconds": 3}}') > 0 AS created;
UPDATE synchub.integrations SET owner = 'regress_sh_app' WHERE name = 'sh_pd';
CREATE TEMP TABLE ids AS SELECT name, id FROM synchub.integrations WHERE name LIKE 'sh\_%';
GRANT SELECT ON ids TO regress_sh_app, regress_sh_other;

-- Rate keys: an http job's host, a sync job's integration.
SELECT synchub._job_rate_key('http', '{"url": "https://User@API.example.com:8443/x?y"}', NULL) AS http_key,
       synchub._job_rate_key('full_import', '{}', 42) AS sync_key,
       synchub._job_rate_key('full_import', '{}', NULL) AS no_integration;

-- Windows: the option (one window or several), else the provider's.
SELECT i.name, r.requests, r.per_ms
  FROM synchub._worker_rate_limits r JOIN ids i ON r.key = 'integration:' || i.id
 ORDER BY i.name, r.per_ms;
-- A request's own windows (HubSpot's search), under integration:<id>:<request>.
SELECT i.name, substr(r.key, length('integration:' || i.id) + 2) AS request, r.requests, r.per_ms
  FROM synchub._worker_rate_limits r JOIN ids i ON r.key LIKE 'integration:' || i.id || ':%'
 ORDER BY i.name, request;
-- A rate_limit that is neither an object nor an array has no windows; a
-- window is at least a millisecond long.
SELECT count(*) AS windows FROM synchub._rate_windows('"fast"');
SELECT count(*) AS windows FROM synchub._rate_windows(NULL);
SELECT * FROM synchub._rate_windows('{"requests": 2, "per_seconds": 0.0001}');
-- synchub.rate_limits holds up to 4 windows per key; a fifth is refused.
INSERT INTO synchub.rate_limits SELECT 'sh.example.com', 10 * g, g FROM generate_series(1, 4) g;
SELECT pg_temp.err($$INSERT INTO synchub.rate_limits VALUES ('sh.example.com', 100, 3600)$$);
INSERT INTO synchub.rate_limits VALUES ('sh2.example.com', 100, 3600);
SELECT pg_temp.err($$UPDATE synchub.rate_limits SET key = 'sh.example.com' WHERE key = 'sh2.example.com'$$);
SELECT key, count(*) AS windows FROM synchub.rate_limits WHERE key LIKE 'sh%' GROUP BY key ORDER BY key;
DELETE FROM synchub.rate_limits WHERE key LIKE 'sh%';

-- Health: nothing yet, then calls of this hour.
SELECT name, provider, status, last_sync_status, circuit, requests, rate_limited, errors, p95_latency_ms
  FROM synchub.integration_health h JOIN ids USING (name) ORDER BY name;
SELECT count(synchub.record_api_call(id, g, CASE WHEN g <= 90 THEN 200 WHEN g <= 95 THEN 429 ELSE 500 END)) AS calls
  FROM ids, generate_series(1, 100) g WHERE name = 'sh_hs';
SELECT count(synchub.record_api_call(id, 20, 0)) AS calls FROM ids WHERE name = 'sh_pd';
-- Calls older than the window do not count.
INSERT INTO synchub.api_latency (integration_id, hour, latency, requests, errors, rate_limited)
SELECT id, date_trunc('hour', now(), 'UTC') - interval '26 hours', synchub.sketch_agg(5000), 7, 7, 0
  FROM ids WHERE name = 'sh_hs' GROUP BY id;
SELECT synchub._sync_finish(id, 'failed', NULL, 'GET http://127.0.0.1:9/x: HTTP 400') FROM ids WHERE name = 'sh_sf';
SELECT name, last_sync_status, last_error, requests, rate_limited, errors,
       CASE name WHEN 'sh_hs' THEN p95_latency_ms BETWEEN 93 AND 97
                 WHEN 'sh_pd' THEN p95_latency_ms BETWEEN 19 AND 21 END AS p95_ok,
       CASE name WHEN 'sh_hs' THEN p50_latency_ms BETWEEN 49 AND 51
                 WHEN 'sh_pd' THEN p50_latency_ms BETWEEN 19 AND 21 END AS p50_ok
  FROM synchub.integration_health h JOIN ids USING (name) ORDER BY name;

-- A role sees the integrations of the roles it is a member of.
SET ROLE regress_sh_app;
SELECT name, requests, errors FROM synchub.integration_health WHERE name LIKE 'sh\_%' ORDER BY name;
SET ROLE regress_sh_other;
SELECT count(*) AS visible FROM synchub.integration_health WHERE name LIKE 'sh\_%';
-- The view is a security barrier: a cheap function of the caller's in WHERE
-- runs after the view's filter, so it never sees another role's rows.
CREATE FUNCTION pg_temp.peek(n text, st text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    IF n LIKE 'sh\_%' THEN
        RAISE NOTICE 'peeked at %', n;
    END IF;
    RETURN true;
END
$$;
SELECT count(*) AS visible FROM synchub.integration_health WHERE pg_temp.peek(name, status);
DROP FUNCTION pg_temp.peek(text, text);
RESET ROLE;
SELECT reloptions FROM pg_class WHERE oid = 'synchub.integration_health'::regclass;

DELETE FROM synchub.api_latency WHERE integration_id IN (SELECT id FROM ids);
DELETE FROM synchub.integrations WHERE name LIKE 'sh\_%';
REVOKE ALL ON SCHEMA synchub FROM regress_sh_app, regress_sh_other;
REVOKE ALL ON synchub.integration_health FROM regress_sh_app, regress_sh_other;
REVOKE ALL ON FUNCTION synchub._circuits(), synchub.quantile(synchub.sketch, double precision),
    synchub.sketch_merge(synchub.sketch) FROM regress_sh_app, regress_sh_other;
DROP TABLE ids;
DROP ROLE regress_sh_app;
DROP ROLE regress_sh_other;
