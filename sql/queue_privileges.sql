-- Queue privileges: nothing is granted to PUBLIC; the grants of
-- docs/privileges.md let a role enqueue and read its own jobs, and no more.
\i test/regress_setup.sql
SET synchub.notify = off;

-- Nothing in the schema is granted to PUBLIC.
SELECT count(*) AS public_grants
  FROM (SELECT (aclexplode(c.relacl)).grantee FROM pg_class c
         WHERE c.relnamespace = 'synchub'::regnamespace AND c.relacl IS NOT NULL
        UNION ALL
        SELECT (aclexplode(p.proacl)).grantee FROM pg_proc p
         WHERE p.pronamespace = 'synchub'::regnamespace AND p.proacl IS NOT NULL
        UNION ALL
        SELECT (aclexplode(n.nspacl)).grantee FROM pg_namespace n
         WHERE n.nspname = 'synchub' AND n.nspacl IS NOT NULL) g
 WHERE g.grantee = 0;
SELECT count(*) AS functions_without_acl
  FROM pg_proc p WHERE p.pronamespace = 'synchub'::regnamespace AND p.proacl IS NULL;

CREATE ROLE regress_nobody;
CREATE ROLE regress_app;
CREATE ROLE regress_other_app;

-- A role with no grants can do nothing.
SET ROLE regress_nobody;
SELECT pg_temp.err($$SELECT synchub.enqueue('x')$$);
SELECT pg_temp.err($$SELECT * FROM synchub.jobs$$);
RESET ROLE;

-- The producer grants of docs/privileges.md.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['regress_app', 'regress_other_app'] LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA synchub TO %I', r);
        EXECUTE format('GRANT EXECUTE ON FUNCTION synchub.enqueue(text, jsonb, bigint, text, integer, timestamptz, integer, text),
                                                   synchub.enqueue_many(jsonb),
                                                   synchub._notify_job(synchub.job_queue),
                                                   synchub._wake_worker(text) TO %I', r);
        EXECUTE format('GRANT SELECT, INSERT ON synchub.job_queue TO %I', r);
        EXECUTE format('GRANT SELECT ON synchub.job_history, synchub.jobs, synchub.queue_stats TO %I', r);
        EXECUTE format('GRANT USAGE ON SEQUENCE synchub.job_id_seq TO %I', r);
    END LOOP;
END
$$;

SET ROLE regress_app;
SELECT synchub.enqueue('app_job', queue => 'priv') > 0 AS enqueued;
SELECT count(*) FROM synchub.enqueue_many('[{"kind": "app_job", "queue": "priv"}]');
SELECT kind, owner FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;
-- a producer cannot claim, cancel or forge another owner
SELECT pg_temp.err($$SELECT * FROM synchub.claim('priv')$$);
SELECT pg_temp.err($$SELECT synchub.cancel(1)$$);
SELECT pg_temp.err($$INSERT INTO synchub.job_queue (kind, queue, owner) VALUES ('forged', 'priv', 'regress_other_app')$$);
RESET ROLE;

SET ROLE regress_other_app;
SELECT synchub.enqueue('other_job', queue => 'priv') > 0 AS enqueued;
-- sees only its own jobs, in the view and in queue_stats
SELECT kind, owner FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;
SELECT queue, state, jobs FROM synchub.queue_stats WHERE queue = 'priv';
RESET ROLE;

-- The extension owner sees every job.
SELECT kind, owner FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;

-- The consumer grants of docs/privileges.md: a role that works its own jobs.
GRANT EXECUTE ON FUNCTION synchub.claim(text, integer, interval, text),
                          synchub.extend_lease(bigint, interval, integer),
                          synchub.progress(bigint, bigint, bigint, jsonb, integer),
                          synchub.complete(bigint, jsonb, integer),
                          synchub.complete_many(bigint[]),
                          synchub.fail(bigint, text, boolean, integer),
                          synchub.cancel(bigint),
                          synchub.retry(bigint),
                          synchub.reap(),
                          synchub.purge(interval),
                          synchub._job_refusal(bigint, integer, text, text),
                          synchub._check_interval(text, interval),
                          synchub._retry_delay(integer) TO regress_app;
GRANT UPDATE, DELETE ON synchub.job_queue TO regress_app;
GRANT INSERT, UPDATE, DELETE ON synchub.job_history TO regress_app;
SET ROLE regress_app;
SELECT kind, attempts FROM synchub.claim('priv', 10);   -- its own two jobs only
SELECT synchub.extend_lease(id, '10 minutes', attempt => 1) AS extended,
       synchub.progress(id, 5, 10, attempt => 1) AS progressed
  FROM synchub.jobs WHERE queue = 'priv' AND state = 'running' ORDER BY id;
SELECT synchub.complete(min(id)) FROM synchub.jobs WHERE queue = 'priv' AND state = 'running';
SELECT synchub.fail(id, 'boom', attempt => 1) FROM synchub.jobs WHERE queue = 'priv' AND state = 'running';
SELECT kind, state FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;
-- cancel, retry, claim again with an expired lease, reap, complete_many, purge
SELECT synchub.cancel(id) FROM synchub.jobs WHERE queue = 'priv' AND state = 'pending';
SELECT synchub.retry(id) FROM synchub.jobs WHERE queue = 'priv' AND state = 'cancelled';
RESET ROLE;
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;   -- its own reap() would race ours
SET ROLE regress_app;
SELECT count(*) AS claimed FROM synchub.claim('priv', 10, lease => '1 millisecond');
SELECT pg_sleep(0.01);
SELECT synchub.reap() AS reaped;
SELECT synchub.complete_many(array_agg(id)) AS completed FROM synchub.claim('priv', 10);
SELECT kind, state FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;
SELECT synchub.purge('0 seconds') AS purged;   -- its own two finished jobs, not the other role's
RESET ROLE;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
SELECT kind, state FROM synchub.jobs WHERE queue = 'priv' ORDER BY id;

-- clean up
DELETE FROM synchub.job_queue WHERE queue = 'priv';
DELETE FROM synchub.job_history WHERE queue = 'priv';
DROP OWNED BY regress_nobody, regress_app, regress_other_app;
DROP ROLE regress_nobody, regress_app, regress_other_app;
