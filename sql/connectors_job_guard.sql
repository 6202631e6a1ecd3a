-- The job guard: a role that may enqueue can neither have another role's
-- integration synced by the worker (a job naming its integration_id) nor
-- take the dedup keys of its syncs ('integration:<id>:<mode>'), whichever
-- way it writes the job; its owner, the superuser and the extension's own
-- functions keep working, and plain jobs are not concerned.
\i test/regress_setup.sql
-- The worker stays away from the jobs enqueued here.
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
SET synchub.notify = off;
-- Errors with the integration ids (which vary) as N.
CREATE FUNCTION pg_temp.errn(q text) RETURNS text LANGUAGE sql AS $$
    SELECT regexp_replace(pg_temp.err(q), 'integration( |:)-?[0-9]+', 'integration\1N', 'g') $$;

-- The trigger, and its WHEN clause: jobs without an integration_id or an
-- 'integration:' dedup key do not fire it.
SELECT tgname, pg_get_triggerdef(t.oid) AS definition
  FROM pg_trigger t WHERE tgrelid = 'synchub.job_queue'::regclass AND NOT tgisinternal;

-- Two application roles with the grants of docs/connectors.md (as in
-- test/regress_app_grants.sql), plus enqueue_many and UPDATE on the queue.
CREATE ROLE regress_jg_a;
CREATE ROLE regress_jg_b;
\i test/regress_app_grants.sql
SELECT count(pg_temp.grant_app(r)) AS roles_granted FROM unnest(ARRAY['regress_jg_a', 'regress_jg_b']) r;
GRANT EXECUTE ON FUNCTION synchub.enqueue_many(jsonb) TO regress_jg_a, regress_jg_b;
GRANT UPDATE ON synchub.job_queue TO regress_jg_a, regress_jg_b;

SET ROLE regress_jg_a;
SELECT synchub.create_integration('jg_a', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "a-secret"}') > 0 AS created;
RESET ROLE;
SET ROLE regress_jg_b;
SELECT synchub.create_integration('jg_b', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "b-secret"}') > 0 AS created;
RESET ROLE;
CREATE TEMP TABLE jg AS SELECT name, id FROM synchub.integrations WHERE name IN ('jg_a', 'jg_b');
GRANT SELECT ON jg TO regress_jg_a, regress_jg_b;

-- B cannot name A's integration: enqueue, enqueue_many, INSERT.
SET ROLE regress_jg_b;
SELECT count(*) AS b_sees_a FROM synchub.integrations WHERE name = 'jg_a';
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('incremental_sync', '{}', %s, 'synchub')$q$, id))
  FROM jg WHERE name = 'jg_a';
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue_many('[{"kind": "full_import", "queue": "synchub", "integration_id": %s}]')$q$, id))
  FROM jg WHERE name = 'jg_a';
SELECT pg_temp.errn(format($q$INSERT INTO synchub.job_queue (queue, kind, integration_id) VALUES ('synchub', 'export', %s)$q$, id))
  FROM jg WHERE name = 'jg_a';
-- Nor an integration that does not exist (it might be A's tomorrow).
SELECT pg_temp.errn($q$SELECT synchub.enqueue('full_import', '{}', -1, 'synchub')$q$);
-- Nor squat A's sync dedup key: without an integration, with its own, by INSERT.
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('noop', queue => 'synchub', dedup_key => 'integration:%s:incremental')$q$, id))
  FROM jg WHERE name = 'jg_a';
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('noop', '{}', %s, 'synchub', dedup_key => 'integration:%s:incremental')$q$, b.id, a.id))
  FROM jg a, jg b WHERE a.name = 'jg_a' AND b.name = 'jg_b';
SELECT pg_temp.errn(format($q$INSERT INTO synchub.job_queue (queue, kind, dedup_key) VALUES ('synchub', 'noop', 'integration:%s:full')$q$, id))
  FROM jg WHERE name = 'jg_a';
-- Nor move its own job onto A's integration or A's key by UPDATE.
SELECT synchub.enqueue('plain', queue => 'jg_plain') > 0 AS b_plain_enqueued;
SELECT pg_temp.errn(format($q$UPDATE synchub.job_queue SET integration_id = %s WHERE queue = 'jg_plain'$q$, id))
  FROM jg WHERE name = 'jg_a';
SELECT pg_temp.errn(format($q$UPDATE synchub.job_queue SET dedup_key = 'integration:%s:full' WHERE queue = 'jg_plain'$q$, id))
  FROM jg WHERE name = 'jg_a';
-- Its own integration and its own keys are fine; so are plain jobs.
SELECT synchub.sync('jg_b') > 0 AS b_synced_own;
SELECT synchub.enqueue('custom', '{}', id, 'jg_plain', dedup_key => format('integration:%s:custom', id)) > 0 AS b_own_key
  FROM jg WHERE name = 'jg_b';
SELECT synchub.enqueue('plain2', queue => 'jg_plain', dedup_key => 'b-key') > 0 AS b_plain_dedup;
SELECT count(*) AS b_plain_jobs FROM synchub.jobs WHERE queue = 'jg_plain';
SELECT count(*) AS b_jobs_of_a FROM synchub.jobs j JOIN jg ON jg.id = j.integration_id WHERE jg.name = 'jg_a';
-- An export job of its own integration needs the export dedup key (one
-- export at a time), whoever enqueues it.
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('export', '{}', %s, 'synchub')$q$, id))
  FROM jg WHERE name = 'jg_b';
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('export', '{}', %s, 'synchub', dedup_key => 'integration:%s:export2')$q$, id, id))
  FROM jg WHERE name = 'jg_b';
RESET ROLE;

-- A still syncs its own integration, once per mode while unfinished.
SET ROLE regress_jg_a;
CREATE TEMP TABLE a_job AS SELECT synchub.sync('jg_a') AS id;
SELECT synchub.sync('jg_a', 'incremental') = (SELECT id FROM a_job) AS same_job;
SELECT j.kind, j.queue, j.owner::text AS owner,
       j.dedup_key = format('integration:%s:incremental', jg.id) AS dedup_key_ok
  FROM synchub.jobs j JOIN jg ON jg.id = j.integration_id WHERE jg.name = 'jg_a' ORDER BY j.kind;
SELECT synchub.schedule('jg_a', '1 hour', 'full');
RESET ROLE;

-- The superuser (as the worker) may enqueue for any integration: sync(),
-- _due_schedules() (the scheduled job goes to the integration's owner),
-- cancel and retry of A's job.
SELECT synchub.sync('jg_a') = (SELECT id FROM a_job) AS superuser_same_job;
CREATE TEMP TABLE due AS SELECT synchub._due_schedules() AS id;
SELECT j.kind, j.owner::text AS owner FROM due JOIN synchub.jobs j USING (id) JOIN jg ON jg.id = j.integration_id
 WHERE jg.name = 'jg_a';
SELECT synchub.cancel(id) AS cancelled, synchub.retry(id) AS retried FROM a_job;
SELECT state, owner::text AS owner FROM synchub.jobs WHERE id = (SELECT id FROM a_job);
SELECT synchub.sync('jg_b', 'full') > 0 AS superuser_synced_b;
-- A superuser's job may name an id that no integration has.
SELECT synchub.enqueue('note', '{}', -1, 'jg_plain') > 0 AS superuser_any_id;
-- But the rules are about the job's owner: not B's job on A's integration,
-- and the reserved keys hold for the superuser too.
SELECT pg_temp.errn(format($q$INSERT INTO synchub.job_queue (queue, kind, integration_id, owner) VALUES ('jg_plain', 'x', %s, 'regress_jg_b')$q$, id))
  FROM jg WHERE name = 'jg_a';
SELECT pg_temp.errn($q$SELECT synchub.enqueue('x', queue => 'jg_plain', dedup_key => 'integration:1:x')$q$);
SET ROLE regress_jg_a;
SELECT j.kind, j.state FROM synchub.jobs j JOIN jg ON jg.id = j.integration_id WHERE jg.name = 'jg_a' ORDER BY j.kind;
RESET ROLE;

-- A role that may not read synchub.integrations gets the same refusal.
REVOKE SELECT ON synchub.integrations FROM regress_jg_b;
SET ROLE regress_jg_b;
SELECT pg_temp.errn(format($q$SELECT synchub.enqueue('custom', '{}', %s, 'jg_plain')$q$, id))
  FROM jg WHERE name = 'jg_b';
SELECT synchub.enqueue('plain3', queue => 'jg_plain') > 0 AS b_plain_still_enqueued;
RESET ROLE;

-- Clean up.
DELETE FROM synchub.job_queue
 WHERE queue = 'jg_plain' OR id IN (SELECT id FROM due) OR integration_id IN (SELECT id FROM synchub.integrations WHERE name LIKE 'jg\_%');
DELETE FROM synchub.job_history
 WHERE queue = 'jg_plain' OR integration_id IN (SELECT id FROM synchub.integrations WHERE name LIKE 'jg\_%');
DELETE FROM synchub.integrations WHERE name LIKE 'jg\_%';
DROP TABLE jg, a_job, due;
DROP OWNED BY regress_jg_a, regress_jg_b;
DROP ROLE regress_jg_a;
DROP ROLE regress_jg_b;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
