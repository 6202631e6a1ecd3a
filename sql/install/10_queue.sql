
-------------------------------------------------------------------------------
-- Job queue
--
-- Unfinished jobs (pending, running) live in synchub.job_queue; a job that
-- finishes (succeeded, dead, cancelled) moves, in the same transaction, to
-- synchub.job_history.  The claim path therefore only ever touches a table
-- whose size is the backlog, not the history: a million finished jobs behind
-- the queue cost a claim nothing, and purge() deletes from a table nobody
-- claims from.  synchub.jobs is the union of both, with the columns of the
-- API; both tables share one column order so a row moves with SELECT (r).*.
-------------------------------------------------------------------------------

CREATE SEQUENCE synchub.job_id_seq AS bigint;
REVOKE ALL ON SEQUENCE synchub.job_id_seq FROM PUBLIC;

CREATE TABLE synchub.job_queue (
    id                bigint      NOT NULL DEFAULT nextval('synchub.job_id_seq') PRIMARY KEY,
    queue             text        NOT NULL DEFAULT 'default',
    kind              text        NOT NULL,
    integration_id    bigint,
    payload           jsonb       NOT NULL DEFAULT '{}',
    priority          integer     NOT NULL DEFAULT 0,
    state             text        NOT NULL DEFAULT 'pending',
    run_at            timestamptz NOT NULL DEFAULT now(),
    attempts          integer     NOT NULL DEFAULT 0,
    max_attempts      integer     NOT NULL DEFAULT 5,
    lease_until       timestamptz,
    dedup_key         text,
    records_processed bigint      NOT NULL DEFAULT 0,
    records_total     bigint,
    checkpoint        jsonb,
    result            jsonb,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    worker            text,
    owner             regrole     NOT NULL DEFAULT current_user::regrole,
    CONSTRAINT job_queue_state_check CHECK (state IN ('pending', 'running')),
    CONSTRAINT job_queue_queue_check CHECK (queue <> '' AND length(queue) <= 128),
    CONSTRAINT job_queue_kind_check CHECK (kind <> '' AND length(kind) <= 128),
    CONSTRAINT job_queue_attempts_check CHECK (max_attempts >= 1 AND attempts >= 0),
    CONSTRAINT job_queue_lease_check CHECK (state <> 'running' OR lease_until IS NOT NULL)
) WITH (fillfactor = 80,
        autovacuum_vacuum_scale_factor = 0.0,
        autovacuum_vacuum_threshold = 2000,
        autovacuum_vacuum_cost_delay = 0);
REVOKE ALL ON synchub.job_queue FROM PUBLIC;

-- The claim index holds pending jobs only, in claim order.
CREATE INDEX job_queue_claim_idx ON synchub.job_queue (queue, priority, run_at, id)
    WHERE state = 'pending';
-- Running jobs by lease expiry, for reap().
CREATE INDEX job_queue_lease_idx ON synchub.job_queue (lease_until)
    WHERE state = 'running';
-- At most one unfinished job per (queue, dedup_key).
CREATE UNIQUE INDEX job_queue_dedup_idx ON synchub.job_queue (queue, dedup_key)
    WHERE dedup_key IS NOT NULL;
CREATE INDEX job_queue_integration_idx ON synchub.job_queue (integration_id)
    WHERE integration_id IS NOT NULL;

CREATE TABLE synchub.job_history (LIKE synchub.job_queue INCLUDING DEFAULTS);
ALTER TABLE synchub.job_history
    ADD PRIMARY KEY (id),
    ALTER COLUMN finished_at SET NOT NULL,
    ADD CONSTRAINT job_history_state_check CHECK (state IN ('succeeded', 'dead', 'cancelled'));
REVOKE ALL ON synchub.job_history FROM PUBLIC;
CREATE INDEX job_history_finished_idx ON synchub.job_history (finished_at);
CREATE INDEX job_history_integration_idx ON synchub.job_history (integration_id, finished_at)
    WHERE integration_id IS NOT NULL;

-- Row-level security: a role sees and changes the jobs it (or a role it
-- belongs to) enqueued.  The extension owner, and so the built-in worker,
-- sees every job.
ALTER TABLE synchub.job_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE synchub.job_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_queue_owner ON synchub.job_queue
    USING (pg_has_role(owner, 'USAGE')) WITH CHECK (pg_has_role(owner, 'USAGE'));
CREATE POLICY job_history_owner ON synchub.job_history
    USING (pg_has_role(owner, 'USAGE')) WITH CHECK (pg_has_role(owner, 'USAGE'));

CREATE VIEW synchub.jobs AS
    SELECT * FROM synchub.job_queue
    UNION ALL
    SELECT * FROM synchub.job_history;
REVOKE ALL ON synchub.jobs FROM PUBLIC;

COMMENT ON TABLE synchub.job_queue IS 'unfinished jobs (pending, running); the claim path';
COMMENT ON TABLE synchub.job_history IS 'finished jobs (succeeded, dead, cancelled); removed by synchub.purge()';
COMMENT ON VIEW synchub.jobs IS 'every job, unfinished and finished';
COMMENT ON SEQUENCE synchub.job_id_seq IS 'job ids';

-------------------------------------------------------------------------------
-- Internal helpers
-------------------------------------------------------------------------------

-- NOTIFY synchub_jobs with a job's state, unless synchub.notify is off.
CREATE FUNCTION synchub._notify_job(j synchub.job_queue) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF coalesce(nullif(current_setting('synchub.notify', true), ''), 'on')::boolean THEN
        PERFORM pg_notify('synchub_jobs', json_build_object(
            'id', j.id, 'queue', j.queue, 'kind', j.kind, 'state', j.state,
            'integration_id', j.integration_id, 'attempts', j.attempts,
            'records_processed', j.records_processed,
            'records_total', j.records_total)::text);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._notify_job(synchub.job_queue) FROM PUBLIC;
COMMENT ON FUNCTION synchub._notify_job(synchub.job_queue) IS 'internal: NOTIFY synchub_jobs for one job';

-- Retry delay after a failed attempt: exponential from
-- synchub.retry_base_delay, capped at synchub.retry_max_delay, with equal
-- jitter (a uniformly random point in the upper half of the delay).
CREATE FUNCTION synchub._retry_delay(attempts integer) RETURNS interval
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    base_s  double precision := extract(epoch FROM coalesce(
                nullif(current_setting('synchub.retry_base_delay', true), ''), '10s')::interval);
    max_s   double precision := extract(epoch FROM coalesce(
                nullif(current_setting('synchub.retry_max_delay', true), ''), '1h')::interval);
    delay_s double precision;
BEGIN
    delay_s := least(max_s, base_s * power(2.0, least(greatest(attempts - 1, 0), 60)));
    RETURN make_interval(secs => delay_s / 2 + random() * delay_s / 2);
END
$$;
REVOKE ALL ON FUNCTION synchub._retry_delay(integer) FROM PUBLIC;
COMMENT ON FUNCTION synchub._retry_delay(integer) IS 'internal: backoff with jitter after the given number of attempts';

-- Why a per-job call found nothing to act on.  With an attempt number the
-- call is a possibly late worker's: it is refused quietly (NULL), even when
-- the job is gone (purged since).  Without one, an unknown job or a job in
-- the wrong state is an error.  Attempt 0 (cancel, retry): the wrong state
-- is refused quietly, an unknown job is an error.
CREATE FUNCTION synchub._job_refusal(job_id bigint, attempt integer, action text,
                                     wanted text DEFAULT 'running') RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    st text;
BEGIN
    SELECT j.state INTO st FROM synchub.jobs j WHERE j.id = job_id;
    IF NOT FOUND AND attempt > 0 THEN
        RETURN;
    ELSIF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF attempt IS NULL THEN
        RAISE EXCEPTION 'cannot % job %', action, job_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The job is %s, not %s.', st, wanted);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._job_refusal(bigint, integer, text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._job_refusal(bigint, integer, text, text) IS 'internal: error for a per-job call that matched no job';

CREATE FUNCTION synchub._check_interval(name text, value interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value IS NULL OR value <= interval '0' THEN
        RAISE EXCEPTION '% must be a positive interval', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value was %s.', coalesce(value::text, 'NULL'));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._check_interval(text, interval) FROM PUBLIC;
COMMENT ON FUNCTION synchub._check_interval(text, interval) IS 'internal: reject a null, zero or negative interval';

-------------------------------------------------------------------------------
-- Enqueue
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.enqueue(kind text, payload jsonb DEFAULT '{}',
                                integration_id bigint DEFAULT NULL,
                                queue text DEFAULT 'default', priority integer DEFAULT 0,
                                run_at timestamptz DEFAULT now(),
                                max_attempts integer DEFAULT 5,
                                dedup_key text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    j synchub.job_queue;
    existing bigint;
BEGIN
    IF kind IS NULL OR kind = '' OR length(kind) > 128 THEN
        RAISE EXCEPTION 'kind must be between 1 and 128 characters long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF queue IS NULL OR queue = '' OR length(queue) > 128 THEN
        RAISE EXCEPTION 'queue must be between 1 and 128 characters long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NULL OR max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value was %s.', coalesce(max_attempts::text, 'NULL'));
    END IF;
    FOR i IN 1..3 LOOP
        INSERT INTO synchub.job_queue AS q
               (queue, kind, integration_id, payload, priority, run_at, max_attempts, dedup_key)
        VALUES (enqueue.queue, enqueue.kind, enqueue.integration_id,
                coalesce(enqueue.payload, '{}'), coalesce(enqueue.priority, 0),
                coalesce(enqueue.run_at, now()), enqueue.max_attempts, enqueue.dedup_key)
        ON CONFLICT (queue, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
        RETURNING * INTO j;
        IF j.id IS NOT NULL THEN
            PERFORM synchub._notify_job(j);
            PERFORM synchub._wake_worker(j.queue);
            RETURN j.id;
        END IF;
        SELECT q.id INTO existing FROM synchub.job_queue q
         WHERE q.queue = enqueue.queue AND q.dedup_key = enqueue.dedup_key;
        IF existing IS NOT NULL THEN
            RETURN existing;
        END IF;
        -- the holder finished in between: try again
    END LOOP;
    RAISE EXCEPTION 'dedup key "%" is held by an unfinished job in queue "%"', enqueue.dedup_key, enqueue.queue
        USING ERRCODE = 'unique_violation',
              HINT = 'The job belongs to a role whose jobs you cannot see.';
END
$$;

CREATE FUNCTION synchub.enqueue_many(jobs jsonb) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'synchub_enqueue_many'
    LANGUAGE C VOLATILE;

-------------------------------------------------------------------------------
-- Claim, leases, progress
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.claim(queue text DEFAULT 'default', max_jobs integer DEFAULT 1,
                              lease interval DEFAULT '5 minutes', worker text DEFAULT NULL)
RETURNS SETOF synchub.jobs
    AS 'MODULE_PATHNAME', 'synchub_claim'
    LANGUAGE C VOLATILE ROWS 1;

CREATE FUNCTION synchub.extend_lease(job_id bigint, lease interval DEFAULT '5 minutes',
                                     attempt integer DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM synchub._check_interval('lease', lease);
    UPDATE synchub.job_queue q SET lease_until = clock_timestamp() + lease
     WHERE q.id = job_id AND q.state = 'running'
       AND (attempt IS NULL OR q.attempts = attempt);
    IF FOUND THEN
        RETURN true;
    END IF;
    PERFORM synchub._job_refusal(job_id, attempt, 'extend the lease of');
    RETURN false;
END
$$;

CREATE FUNCTION synchub.progress(job_id bigint, processed bigint, total bigint DEFAULT NULL,
                                 checkpoint jsonb DEFAULT NULL, attempt integer DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j synchub.job_queue;
BEGIN
    IF processed IS NULL OR processed < 0 OR total < 0 THEN
        RAISE EXCEPTION 'processed and total must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE synchub.job_queue q
       SET records_processed = processed,
           records_total = coalesce(total, q.records_total),
           checkpoint = coalesce(progress.checkpoint, q.checkpoint)
     WHERE q.id = job_id AND q.state = 'running'
       AND (attempt IS NULL OR q.attempts = attempt)
    RETURNING q.* INTO j;
    IF j.id IS NOT NULL THEN
        PERFORM synchub._notify_job(j);
        RETURN true;
    END IF;
    PERFORM synchub._job_refusal(job_id, attempt, 'report progress of');
    RETURN false;
END
$$;

-------------------------------------------------------------------------------
-- Outcomes
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.complete(job_id bigint, result jsonb DEFAULT NULL,
                                 attempt integer DEFAULT NULL) RETURNS boolean
    AS 'MODULE_PATHNAME', 'synchub_complete'
    LANGUAGE C VOLATILE;

CREATE FUNCTION synchub.complete_many(job_ids bigint[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'synchub_complete_many'
    LANGUAGE C VOLATILE;

CREATE FUNCTION synchub.fail(job_id bigint, error text, retryable boolean DEFAULT true,
                             attempt integer DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j synchub.job_queue;
BEGIN
    SELECT q.* INTO j FROM synchub.job_queue q
     WHERE q.id = job_id AND q.state = 'running'
       AND (attempt IS NULL OR q.attempts = attempt)
       FOR UPDATE;
    IF j.id IS NULL THEN
        PERFORM synchub._job_refusal(job_id, attempt, 'fail');
        RETURN NULL;
    END IF;
    IF coalesce(retryable, true) AND j.attempts < j.max_attempts THEN
        UPDATE synchub.job_queue q
           SET state = 'pending', lease_until = NULL, worker = NULL,
               last_error = left(error, 8000),
               run_at = clock_timestamp() + synchub._retry_delay(q.attempts)
         WHERE q.id = job_id
        RETURNING q.* INTO j;
        PERFORM synchub._wake_worker(j.queue);
    ELSE
        DELETE FROM synchub.job_queue q WHERE q.id = job_id;
        j.state := 'dead';
        j.last_error := left(error, 8000);
        j.lease_until := NULL;
        j.finished_at := clock_timestamp();
        INSERT INTO synchub.job_history SELECT (j).*;
    END IF;
    PERFORM synchub._notify_job(j);
    RETURN j.state;
END
$$;

CREATE FUNCTION synchub.cancel(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j synchub.job_queue;
BEGIN
    DELETE FROM synchub.job_queue q WHERE q.id = job_id RETURNING q.* INTO j;
    IF j.id IS NULL THEN
        PERFORM synchub._job_refusal(job_id, 0, 'cancel');
        RETURN false;
    END IF;
    j.state := 'cancelled';
    j.lease_until := NULL;
    j.finished_at := clock_timestamp();
    INSERT INTO synchub.job_history SELECT (j).*;
    PERFORM synchub._notify_job(j);
    RETURN true;
END
$$;

CREATE FUNCTION synchub.retry(job_id bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j synchub.job_queue;
    holder bigint;
BEGIN
    SELECT h.* INTO j FROM synchub.job_history h
     WHERE h.id = job_id AND h.state IN ('dead', 'cancelled') FOR UPDATE;
    IF j.id IS NULL THEN
        PERFORM synchub._job_refusal(job_id, 0, 'retry');
        RETURN false;
    END IF;
    IF j.dedup_key IS NOT NULL THEN
        SELECT q.id INTO holder FROM synchub.job_queue q
         WHERE q.queue = j.queue AND q.dedup_key = j.dedup_key;
        IF holder IS NOT NULL THEN
            RAISE EXCEPTION 'cannot retry job %', job_id
                USING ERRCODE = 'unique_violation',
                      DETAIL = format('Job %s holds its dedup key "%s".', holder, j.dedup_key);
        END IF;
    END IF;
    DELETE FROM synchub.job_history h WHERE h.id = job_id;
    -- A full set of attempts again, numbered on from the last one, so that
    -- a worker still holding an earlier attempt cannot touch the new run.
    j.state := 'pending';
    j.max_attempts := least(j.attempts::bigint + j.max_attempts, 2147483647);
    j.run_at := clock_timestamp();
    j.lease_until := NULL;
    j.started_at := NULL;
    j.finished_at := NULL;
    j.worker := NULL;
    INSERT INTO synchub.job_queue SELECT (j).*;
    PERFORM synchub._notify_job(j);
    PERFORM synchub._wake_worker(j.queue);
    RETURN true;
END
$$;

CREATE FUNCTION synchub.reap() RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    j synchub.job_queue;
    n integer := 0;
BEGIN
    FOR j IN
        SELECT q.* FROM synchub.job_queue q
         WHERE q.state = 'running' AND q.lease_until < clock_timestamp()
         ORDER BY q.lease_until
           FOR UPDATE SKIP LOCKED
    LOOP
        n := n + 1;
        IF j.attempts < j.max_attempts THEN
            UPDATE synchub.job_queue q
               SET state = 'pending', lease_until = NULL, worker = NULL, run_at = clock_timestamp(),
                   last_error = 'lease expired' || coalesce(' (worker ' || q.worker || ')', '')
             WHERE q.id = j.id
            RETURNING q.* INTO j;
            PERFORM synchub._wake_worker(j.queue);
        ELSE
            DELETE FROM synchub.job_queue q WHERE q.id = j.id;
            j.state := 'dead';
            j.last_error := 'lease expired on the last attempt' || coalesce(' (worker ' || j.worker || ')', '');
            j.lease_until := NULL;
            j.finished_at := clock_timestamp();
            INSERT INTO synchub.job_history SELECT (j).*;
        END IF;
        PERFORM synchub._notify_job(j);
    END LOOP;
    RETURN n;
END
$$;

CREATE FUNCTION synchub.purge(older_than interval DEFAULT '7 days') RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cutoff timestamptz;
    batch bigint;
    total bigint := 0;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value was %s.', coalesce(older_than::text, 'NULL'));
    END IF;
    cutoff := clock_timestamp() - older_than;
    -- Indexed batches of 10,000 in finished_at order.
    LOOP
        WITH victims AS (
            SELECT h.id FROM synchub.job_history h
             WHERE h.finished_at < cutoff
             ORDER BY h.finished_at
             LIMIT 10000
               FOR UPDATE SKIP LOCKED),
        d AS (DELETE FROM synchub.job_history h USING victims v WHERE h.id = v.id RETURNING 1)
        SELECT count(*) INTO batch FROM d;
        total := total + batch;
        EXIT WHEN batch < 10000;
    END LOOP;
    RETURN total;
END
$$;

CREATE VIEW synchub.queue_stats AS
    SELECT q.queue, q.state, count(*) AS jobs,
           CASE WHEN q.state = 'pending'
                THEN now() - min(q.run_at) FILTER (WHERE q.run_at <= now()) END AS oldest_age
      FROM synchub.job_queue q
     GROUP BY q.queue, q.state
    UNION ALL
    SELECT h.queue, h.state, count(*) AS jobs, NULL::interval AS oldest_age
      FROM synchub.job_history h
     GROUP BY h.queue, h.state;
REVOKE ALL ON synchub.queue_stats FROM PUBLIC;
DO $$
BEGIN
    -- A reader of the views gets the row-level security of the tables (PG 15+).
    IF current_setting('server_version_num')::int >= 150000 THEN
        EXECUTE 'ALTER VIEW synchub.jobs SET (security_invoker = true)';
        EXECUTE 'ALTER VIEW synchub.queue_stats SET (security_invoker = true)';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION synchub.enqueue(text, jsonb, bigint, text, integer, timestamptz, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.enqueue_many(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.claim(text, integer, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.extend_lease(bigint, interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.progress(bigint, bigint, bigint, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.complete(bigint, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.complete_many(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.fail(bigint, text, boolean, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.cancel(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.retry(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.reap() FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.purge(interval) FROM PUBLIC;

COMMENT ON FUNCTION synchub.enqueue(text, jsonb, bigint, text, integer, timestamptz, integer, text) IS
    'add a job; with a dedup_key an unfinished job already holds, return that job''s id';
COMMENT ON FUNCTION synchub.enqueue_many(jsonb) IS 'add a JSON array of jobs; returns their ids in input order';
COMMENT ON FUNCTION synchub.claim(text, integer, interval, text) IS
    'take up to max_jobs due pending jobs (priority, run_at, id order) with FOR UPDATE SKIP LOCKED';
COMMENT ON FUNCTION synchub.extend_lease(bigint, interval, integer) IS 'push a running job''s lease forward';
COMMENT ON FUNCTION synchub.progress(bigint, bigint, bigint, jsonb, integer) IS
    'record a running job''s progress and checkpoint';
COMMENT ON FUNCTION synchub.complete(bigint, jsonb, integer) IS 'mark a running job succeeded';
COMMENT ON FUNCTION synchub.complete_many(bigint[]) IS 'mark running jobs succeeded; returns how many';
COMMENT ON FUNCTION synchub.fail(bigint, text, boolean, integer) IS
    'record a failed attempt; returns the new state, pending (retry with backoff) or dead';
COMMENT ON FUNCTION synchub.cancel(bigint) IS 'cancel a pending or running job';
COMMENT ON FUNCTION synchub.retry(bigint) IS 'put a dead or cancelled job back to pending';
COMMENT ON FUNCTION synchub.reap() IS 'give running jobs whose lease expired back to pending (or dead on their last attempt)';
COMMENT ON FUNCTION synchub.purge(interval) IS 'remove finished jobs older than the interval, in indexed batches';
COMMENT ON VIEW synchub.queue_stats IS 'jobs per (queue, state); oldest_age is how long the oldest due pending job has waited';

-- pg_dump keeps the jobs (extension tables are otherwise left out of dumps).
SELECT pg_catalog.pg_extension_config_dump('synchub.job_queue', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.job_history', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.job_id_seq', '');
