-- Integrations: create_integration and its option checks, sync() and its
-- job, schedule() and the worker's _due_schedules().
\i test/regress_setup.sql
-- The worker stays away from the jobs enqueued here.
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
SET synchub.notify = off;
CREATE SCHEMA connectors_it;
CREATE TABLE connectors_it.people (
    integration_id bigint NOT NULL, external_id text NOT NULL, email text, full_name text,
    remote_updated_at timestamptz, UNIQUE (integration_id, external_id));
CREATE TABLE connectors_it.nokey (integration_id bigint, external_id text, email text);
CREATE VIEW connectors_it.v AS SELECT 1 AS x;
CREATE FUNCTION pg_temp.iid(n text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM synchub.integrations WHERE name = n $$;

SELECT synchub.create_integration('it_hs', 'hubspot', 'https://api.hubapi.com', '{"token": "pat-secret-1"}') > 0 AS created;
SELECT synchub.create_integration('it_sf', 'salesforce', 'https://example.my.salesforce.com/', '{"access_token": "00D-secret"}',
    '{"page_size": 500, "rate_limit": [{"requests": 100, "per_seconds": 10}, {"requests": 1000, "per_seconds": 3600}],
      "timeout_ms": 5000, "lookback_seconds": 0}') > 0 AS created;
SELECT synchub.create_integration('it_pd', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "pd-secret"}',
    '{"target": "connectors_it.people", "field_map": {"full_name": "name", "email": "emails[1].value"},
      "rate_limit": {"requests": 20, "per_seconds": 2}}') > 0 AS created;
SELECT name, provider, base_url, options, status, owner = current_user::regrole AS mine
  FROM synchub.integrations WHERE name LIKE 'it\_%' ORDER BY name;
-- A target named through the search_path is stored with its schema.
SET search_path = connectors_it, public;
SELECT synchub.create_integration('it_path', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "x"}',
                                  '{"target": "people"}') > 0 AS created;
RESET search_path;
SELECT options->>'target' AS target FROM synchub.integrations WHERE name = 'it_path';
DELETE FROM synchub.integrations WHERE name = 'it_path';

-- The field map in effect: the provider's default for the columns the
-- target has, with the integration's overrides.
SELECT i.name, synchub._effective_field_map(p.spec, i.options) AS field_map
  FROM synchub.integrations i JOIN synchub.providers p ON p.name = i.provider
 WHERE i.name LIKE 'it\_%' ORDER BY i.name;
SELECT synchub._effective_field_map(spec, '{"field_map": {"phone": null, "properties": "$"}}')
  FROM synchub.providers WHERE name = 'hubspot';

-- Errors of create_integration; a failed call leaves nothing behind.
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'zoho', 'https://x.example', '{"token": "t"}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_hs', 'hubspot', 'https://x.example', '{"token": "t"}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('', 'hubspot', 'https://x.example', '{"token": "t"}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'https://user:pw@x.example', '{}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'https://x.example/?a=1', '{}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'ftp://x.example', '{}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', NULL, '{}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'https://x.example', NULL)$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'https://x.example', '["tok-in-array"]')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('it_x', 'hubspot', 'https://x.example', '"bare-secret"')$$);
CREATE FUNCTION pg_temp.opt(o text) RETURNS text LANGUAGE sql AS $f$
    SELECT pg_temp.err(format($q$SELECT synchub.create_integration('it_x', 'hubspot', 'https://x.example', '{"token": "t"}', %L)$q$, o))
$f$;
SELECT pg_temp.opt('[]');
SELECT pg_temp.opt('{"colour": "red"}');
SELECT pg_temp.opt('{"target": "connectors_it.missing"}');
SELECT pg_temp.opt('{"target": 5}');
SELECT pg_temp.opt('{"target": "connectors_it.v"}');
SELECT pg_temp.opt('{"target": "connectors_it.nokey"}');
SELECT pg_temp.opt('{"field_map": ["email"]}');
SELECT pg_temp.opt('{"field_map": {"nickname": "properties.nickname"}}');
SELECT pg_temp.opt('{"field_map": {"email": "properties..email"}}');
SELECT pg_temp.opt('{"field_map": {"email": 7}}');
SELECT pg_temp.opt('{"field_map": {"external_id": "id"}}');
SELECT pg_temp.opt('{"page_size": 201}');
SELECT pg_temp.opt('{"page_size": 0}');
SELECT pg_temp.opt('{"page_size": "10"}');
SELECT pg_temp.opt('{"page_size": 10.5}');
SELECT pg_temp.opt('{"rate_limit": {"requests": 10}}');
SELECT pg_temp.opt('{"rate_limit": []}');
SELECT pg_temp.opt('{"rate_limit": [{"requests": -1, "per_seconds": 1}]}');
SELECT pg_temp.opt('{"rate_limit": [{"requests": 1, "per_seconds": 1}, {"requests": 2, "per_seconds": 2}, {"requests": 3, "per_seconds": 3}, {"requests": 4, "per_seconds": 4}, {"requests": 5, "per_seconds": 5}]}');
SELECT pg_temp.opt('{"rate_limit": {"requests": 10, "per_seconds": 1, "burst": 5}}');
SELECT pg_temp.opt('{"timeout_ms": 0}');
SELECT pg_temp.opt('{"lookback_seconds": 90000}');
SELECT pg_temp.opt('{"properties": []}');
SELECT pg_temp.opt('{"properties": ["a b"]}');
SELECT pg_temp.opt('{"external_id_field": "Ext Id"}');
SELECT count(*) AS integrations FROM synchub.integrations WHERE name LIKE 'it\_%';
-- Options written directly are checked too.
SELECT pg_temp.err($$UPDATE synchub.integrations SET options = '{"page_size": 999}' WHERE name = 'it_hs'$$);
SELECT pg_temp.err($$UPDATE synchub.integrations SET provider = 'hubspot' WHERE name = 'it_sf'$$);
UPDATE synchub.integrations SET options = '{"target": "synchub.contacts"}' WHERE name = 'it_hs';
SELECT options FROM synchub.integrations WHERE name = 'it_hs';

-- sync(): one unfinished job per integration and mode, on queue synchub.
SELECT synchub.sync('it_hs') = synchub.sync('it_hs', 'incremental') AS same_job;
SELECT synchub.sync('it_hs', 'full') <> synchub.sync('it_hs') AS other_job;
UPDATE synchub.integrations SET options = options || '{"export": true}' WHERE name = 'it_hs';
SELECT synchub.sync('it_hs', 'export') > 0 AS export_job;
SELECT i.name, j.kind, j.queue, j.payload, j.state,
       j.dedup_key = format('integration:%s:%s', i.id, j.payload->>'mode') AS dedup_key_ok
  FROM synchub.jobs j JOIN synchub.integrations i ON i.id = j.integration_id
 WHERE i.name LIKE 'it\_%' ORDER BY j.kind;
-- No credential in a job row.
SELECT count(*) AS jobs_with_secrets FROM synchub.jobs j
 WHERE j.integration_id IS NOT NULL AND (j.payload::text ~ 'secret' OR coalesce(j.checkpoint::text, '') ~ 'secret');
SELECT pg_temp.err($$SELECT synchub.sync('it_hs', 'bogus')$$);
SELECT pg_temp.err($$SELECT synchub.sync('it_hs', NULL)$$);
SELECT pg_temp.err($$SELECT synchub.sync('it_nope')$$);
SELECT pg_temp.err($$SELECT synchub.set_credentials('it_nope', '{"token": "x"}')$$);
-- A provider without incremental requests or a write endpoint.
INSERT INTO synchub.providers
SELECT 'it_fullonly', jsonb_set(spec - 'write', '{modes}', '{"full": ["list"]}') FROM synchub.providers WHERE name = 'hubspot';
SELECT synchub.create_integration('it_fo', 'it_fullonly', 'http://127.0.0.1:9', '{"token": "t"}') > 0 AS created;
SELECT pg_temp.err($$SELECT synchub.sync('it_fo')$$);
SELECT pg_temp.err($$SELECT synchub.sync('it_fo', 'export')$$);
SELECT pg_temp.err($$DELETE FROM synchub.providers WHERE name = 'it_fullonly'$$);
-- A paused integration's job waits for the end of the pause.
UPDATE synchub.integrations SET status = 'paused', paused_until = '2030-01-02 00:00:00+00' WHERE name = 'it_sf';
CREATE TEMP TABLE paused_job AS SELECT synchub.sync('it_sf', 'full') AS id;
SELECT j.run_at AT TIME ZONE 'UTC' AS run_at FROM synchub.jobs j JOIN paused_job p USING (id);

-- schedule(): one row per integration and mode; calling again changes it.
SELECT synchub.schedule('it_hs', '15 minutes');
SELECT synchub.schedule('it_hs', '1 day', 'full');
SELECT synchub.schedule('it_sf', '1 hour');
SELECT synchub.schedule('it_hs', '30 minutes');
SELECT i.name, s.mode, s.every FROM synchub.schedules s JOIN synchub.integrations i ON i.id = s.integration_id
 WHERE i.name LIKE 'it\_%' ORDER BY 1, 2;
SELECT pg_temp.err($$SELECT synchub.schedule('it_hs', '0 seconds')$$);
SELECT pg_temp.err($$SELECT synchub.schedule('it_hs', '-5 minutes')$$);
SELECT pg_temp.err($$SELECT synchub.schedule('it_hs', NULL)$$);
SELECT pg_temp.err($$SELECT synchub.schedule('it_hs', '10 minutes', 'sometimes')$$);
SELECT pg_temp.err($$SELECT synchub.schedule('it_nope', '10 minutes')$$);

-- The worker's call: due schedules of active integrations are enqueued
-- (the unfinished incremental job is reused) and move forward; it_sf is
-- paused until 2030-01-02.
UPDATE synchub.schedules SET next_run_at = '2030-01-01 00:00:00+00'
 WHERE integration_id IN (SELECT id FROM synchub.integrations WHERE name LIKE 'it\_%');
CREATE TEMP TABLE due AS SELECT synchub._due_schedules('2030-01-01 00:00:30+00') AS job;
SELECT count(*) AS enqueued,
       count(*) FILTER (WHERE job = synchub.sync('it_hs')) AS reused_incremental
  FROM due;
SELECT i.name, s.mode, s.next_run_at AT TIME ZONE 'UTC' AS next_run, s.last_job_id IS NOT NULL AS has_job
  FROM synchub.schedules s JOIN synchub.integrations i ON i.id = s.integration_id
 WHERE i.name LIKE 'it\_%' ORDER BY 1, 2;
SELECT count(*) AS nothing_due FROM synchub._due_schedules('2030-01-01 00:10:00+00');
-- Missed runs are not caught up; it_sf's pause has ended by then.
SELECT count(*) AS enqueued FROM synchub._due_schedules('2030-01-03 05:00:00+00');
SELECT i.name, s.mode, s.next_run_at AT TIME ZONE 'UTC' AS next_run
  FROM synchub.schedules s JOIN synchub.integrations i ON i.id = s.integration_id
 WHERE i.name LIKE 'it\_%' ORDER BY 1, 2;
SELECT synchub.unschedule('it_hs', 'full') AS removed, synchub.unschedule('it_hs', 'full') AS again;

-- The worker's bookkeeping: a run's outcome and bookmark; pause and resume.
SELECT synchub._sync_finish(pg_temp.iid('it_hs'), 'succeeded', '{"since": "2026-11-06T00:00:00Z", "since_id": "9"}');
SELECT synchub._sync_finish(pg_temp.iid('it_hs'), 'failed', NULL, 'HTTP status 500');
SELECT bookmark, last_sync_status, last_error, last_sync_at IS NOT NULL AS has_time
  FROM synchub.sync_state WHERE integration_id = pg_temp.iid('it_hs');
SELECT synchub._integration_pause(pg_temp.iid('it_hs'), '2031-01-01 00:00:00+00', 'TotalRequests Limit exceeded.');
SELECT status, paused_until AT TIME ZONE 'UTC' AS paused_until, status_reason FROM synchub.integrations WHERE name = 'it_hs';
SELECT count(*) AS held_jobs, min(run_at AT TIME ZONE 'UTC') AS run_at
  FROM synchub.jobs WHERE integration_id = pg_temp.iid('it_hs') AND state = 'pending';
CREATE TEMP TABLE due2 AS SELECT synchub._due_schedules('2030-06-01 00:00:00+00') AS id;
SELECT count(*) AS enqueued, count(*) FILTER (WHERE j.integration_id = pg_temp.iid('it_hs')) AS for_paused
  FROM due2 JOIN synchub.jobs j USING (id);
SELECT synchub._integration_resume(pg_temp.iid('it_hs'));
SELECT status, paused_until, status_reason FROM synchub.integrations WHERE name = 'it_hs';
SELECT count(*) AS released FROM synchub.jobs
 WHERE integration_id = pg_temp.iid('it_hs') AND state = 'pending' AND run_at <= now();
SELECT pg_temp.err($$SELECT synchub._integration_pause(-1, NULL, 'x')$$);

-- Clean up.
DELETE FROM synchub.job_queue WHERE integration_id IN (SELECT id FROM synchub.integrations WHERE name LIKE 'it\_%');
DELETE FROM synchub.integrations WHERE name LIKE 'it\_%';
DELETE FROM synchub.providers WHERE name = 'it_fullonly';
DROP SCHEMA connectors_it CASCADE;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
