-- Job queue: every function, state transition and error.
-- A fresh extension so that job ids are predictable.
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
DROP EXTENSION synchub CASCADE;
CREATE EXTENSION synchub;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
\i test/regress_setup.sql
SET synchub.notify = off;

-- enqueue: defaults
SELECT synchub.enqueue('send_email', '{"to": "a@example.com"}') AS id1;
SELECT id, queue, kind, integration_id, payload, priority, state, attempts, max_attempts,
       dedup_key, records_processed, records_total, finished_at IS NULL AS unfinished
  FROM synchub.jobs ORDER BY id;
-- explicit arguments
SELECT synchub.enqueue('full_import', '{}', 42, 'q2', -5, now() - interval '1 minute', 2, 'imp-42');
-- same dedup key while unfinished: the holder's id
SELECT synchub.enqueue('full_import', '{"other": true}', 42, 'q2', 0, now(), 2, 'imp-42');
-- same dedup key in another queue: a new job
SELECT synchub.enqueue('full_import', '{}', 42, 'q3', 0, now(), 2, 'imp-42');
SELECT count(*) FROM synchub.jobs WHERE dedup_key = 'imp-42';

-- enqueue errors
SELECT pg_temp.err('SELECT synchub.enqueue('''')');
SELECT pg_temp.err('SELECT synchub.enqueue(NULL)');
SELECT pg_temp.err('SELECT synchub.enqueue(''k'', queue => '''')');
SELECT pg_temp.err('SELECT synchub.enqueue(''k'', max_attempts => 0)');
SELECT pg_temp.err('SELECT synchub.enqueue(repeat(''k'', 200))');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "queue": ""}]'')');

-- enqueue_many: input order, dedup inside the batch, defaults
SELECT * FROM synchub.enqueue_many('[
  {"kind": "a", "queue": "batch"},
  {"kind": "b", "queue": "batch", "dedup_key": "d1", "priority": 3},
  {"kind": "c", "queue": "batch", "dedup_key": "d1"},
  {"kind": "d", "queue": "batch", "payload": {"x": 1}, "max_attempts": 1,
   "run_at": "2000-01-01T00:00:00Z", "integration_id": 7}
]');
SELECT id, kind, priority, payload, max_attempts, integration_id, run_at < '2001-01-01' AS past
  FROM synchub.jobs WHERE queue = 'batch' ORDER BY id;
SELECT * FROM synchub.enqueue_many('[]');
-- enqueue_many errors
SELECT pg_temp.err('SELECT synchub.enqueue_many(''{"kind": "a"}'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(NULL)');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a"}, 5]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "colour": "red"}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a"}, {"payload": {}}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "priority": "high"}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "max_attempts": 0}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "run_at": "someday"}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": "a", "integration_id": "7"}]'')');
SELECT pg_temp.err('SELECT synchub.enqueue_many(''[{"kind": 7}]'')');

-- claim: priority, then run_at, then id; never a future job
SELECT synchub.enqueue('later', queue => 'order', run_at => now() + interval '1 hour');
SELECT synchub.enqueue('p5', queue => 'order', priority => 5);
SELECT synchub.enqueue('p1-new', queue => 'order', priority => 1);
SELECT synchub.enqueue('p1-old', queue => 'order', priority => 1, run_at => now() - interval '1 hour');
SELECT kind, state, attempts, worker, lease_until > now() AS leased
  FROM synchub.claim('order', 10, '1 minute', 'w1');
SELECT count(*) AS nothing_left FROM synchub.claim('order', 10);
-- claim errors
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', -1)');
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', 0)');
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', 10001)');
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', 1, ''-5 minutes'')');
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', 1, ''0'')');
SELECT pg_temp.err('SELECT * FROM synchub.claim(NULL)');
SELECT pg_temp.err('SELECT * FROM synchub.claim(''order'', 1, ''soon'')');

-- complete
SELECT id AS p5 FROM synchub.jobs WHERE kind = 'p5' \gset
SELECT synchub.complete(:p5, '{"ok": true}');
SELECT state, result, finished_at IS NOT NULL AS finished, lease_until FROM synchub.jobs WHERE id = :p5;
SELECT pg_temp.err('SELECT synchub.complete(' || :p5 || ')');            -- not running any more
SELECT synchub.complete(:p5, attempt => 1);  -- a late worker: refused quietly
-- a late worker's job may be gone (purged): refused quietly too
SELECT synchub.complete(999999, attempt => 1) AS complete, synchub.fail(999999, 'x', attempt => 1) AS fail,
       synchub.progress(999999, 1, attempt => 1) AS progress, synchub.extend_lease(999999, attempt => 1) AS extend;
SELECT pg_temp.err('SELECT synchub.complete(999999)');         -- unknown job

-- complete_many: counts only running jobs
SELECT array_agg(id ORDER BY id) AS running FROM synchub.jobs WHERE queue = 'order' AND state = 'running' \gset
SELECT synchub.complete_many(:'running'::bigint[] || ARRAY[999999, :p5]::bigint[]);
SELECT synchub.complete_many('{}');
SELECT kind, state FROM synchub.jobs WHERE queue = 'order' ORDER BY id;

-- progress and extend_lease
SELECT synchub.enqueue('import', queue => 'prog') AS j \gset
SELECT pg_temp.err('SELECT synchub.progress(' || :j || ', 10)');         -- pending: error
SELECT attempts AS a FROM synchub.claim('prog') \gset
SELECT synchub.progress(:j, 10, 100, '{"page": 1}', :a);
SELECT synchub.progress(:j, 20);
SELECT records_processed, records_total, checkpoint FROM synchub.jobs WHERE id = :j;
SELECT synchub.progress(:j, 30, attempt => :a + 1);  -- stale attempt
SELECT pg_temp.err('SELECT synchub.progress(' || :j || ', -1)');
SELECT synchub.extend_lease(:j, '1 hour', :a);
SELECT lease_until > now() + interval '59 minutes' AS extended FROM synchub.jobs WHERE id = :j;
SELECT synchub.extend_lease(:j, '1 hour', :a + 1);
SELECT pg_temp.err('SELECT synchub.extend_lease(' || :j || ', ''-1 hour'')');
SELECT pg_temp.err('SELECT synchub.extend_lease(999999)');

-- fail: retry with backoff, then dead
SET synchub.retry_base_delay = '60s';
SELECT synchub.enqueue('flaky', queue => 'fail', max_attempts => 2) AS f \gset
SELECT attempts AS a FROM synchub.claim('fail') \gset
SELECT synchub.fail(:f, 'boom 1', attempt => :a);
SELECT state, attempts, last_error, worker, lease_until,
       run_at BETWEEN now() + interval '29 seconds' AND now() + interval '61 seconds' AS backoff_with_jitter
  FROM synchub.jobs WHERE id = :f;
SELECT count(*) AS not_due FROM synchub.claim('fail');
UPDATE synchub.job_queue SET run_at = now() - interval '1 second' WHERE id = :f;
SELECT attempts AS a FROM synchub.claim('fail') \gset
SELECT synchub.fail(:f, 'boom stale', attempt => :a - 1);   -- late worker of attempt 1
SELECT synchub.fail(:f, 'boom 2', attempt => :a);           -- last attempt: dead
SELECT state, attempts, last_error FROM synchub.jobs WHERE id = :f;
SELECT pg_temp.err('SELECT synchub.fail(' || :f || ', ''again'')');
SELECT pg_temp.err('SELECT synchub.fail(999999, ''x'')');
-- a non-retryable failure goes dead at once
SELECT synchub.enqueue('bad_request', queue => 'fail2') AS g \gset
SELECT count(*) FROM synchub.claim('fail2');
SELECT synchub.fail(:g, 'HTTP 400', retryable => false);

-- retry a dead job: a full set of attempts again, numbered on from the last
SELECT synchub.retry(:f);
SELECT state, attempts, max_attempts, last_error FROM synchub.jobs WHERE id = :f;
SELECT synchub.retry(:f);                -- pending: nothing to do
SELECT synchub.retry(:p5);               -- succeeded: nothing to do
SELECT pg_temp.err('SELECT synchub.retry(999999)');
-- the new run is attempt 3: the worker of the dead run's attempt 2 is refused
SELECT attempts AS a3 FROM synchub.claim('fail') \gset
SELECT :a3 AS attempt, synchub.complete(:f, attempt => :a) AS late_complete,
       synchub.progress(:f, 1, attempt => :a) AS late_progress, synchub.fail(:f, 'late', attempt => :a) AS late_fail;
SELECT state, attempts FROM synchub.jobs WHERE id = :f;

-- cancel pending and running jobs; a running job's worker is then refused
SELECT synchub.cancel(:f);
SELECT synchub.cancel(:f);
SELECT state FROM synchub.jobs WHERE id = :f;
SELECT synchub.enqueue('long', queue => 'cancel') AS c \gset
SELECT attempts AS a FROM synchub.claim('cancel') \gset
SELECT synchub.cancel(:c);
SELECT synchub.complete(:c, attempt => :a);
SELECT pg_temp.err('SELECT synchub.cancel(999999)');
-- a cancelled job can be retried; its cancelled run's worker cannot touch the new run
SELECT synchub.retry(:c);
SELECT state, attempts, max_attempts FROM synchub.jobs WHERE id = :c;
SELECT attempts AS c2 FROM synchub.claim('cancel') \gset
SELECT :c2 AS attempt, synchub.complete(:c, attempt => :a) AS late_complete;
SELECT synchub.complete(:c, attempt => :c2) AS completed;
-- retry refused while another unfinished job holds the dedup key
SELECT synchub.enqueue('dd', queue => 'dq', dedup_key => 'k') AS d1 \gset
SELECT synchub.cancel(:d1);
SELECT synchub.enqueue('dd', queue => 'dq', dedup_key => 'k') AS d2 \gset
SELECT pg_temp.err('SELECT synchub.retry(' || :d1 || ')');

-- reap: expired leases back to pending; on the last attempt, dead
SELECT synchub.enqueue('r', queue => 'reap') AS r1 \gset
SELECT synchub.enqueue('r', queue => 'reap', max_attempts => 1) AS r2 \gset
SELECT count(*) FROM synchub.claim('reap', 2, '1 hour', 'gone-worker');
SELECT synchub.reap();                    -- leases still valid
UPDATE synchub.job_queue SET lease_until = now() - interval '1 second' WHERE queue = 'reap';
SELECT synchub.reap();
SELECT id = :r1 AS first, state, attempts, last_error FROM synchub.jobs WHERE queue = 'reap' ORDER BY id;

-- queue_stats
SELECT queue, state, jobs, oldest_age IS NOT NULL AS has_age
  FROM synchub.queue_stats WHERE queue IN ('order', 'reap', 'q2') ORDER BY 1, 2;

-- purge: only finished jobs older than the interval
SELECT synchub.purge('1 hour');
UPDATE synchub.job_history SET finished_at = now() - interval '2 hours' WHERE queue = 'order';
SELECT synchub.purge('1 hour');
SELECT count(*) FROM synchub.jobs WHERE queue = 'order';
SELECT pg_temp.err('SELECT synchub.purge(''-1 day'')');
SELECT pg_temp.err('SELECT synchub.purge(NULL)');
SELECT synchub.purge() >= 0 AS default_ok;

-- settings
SHOW synchub.notify;
SHOW synchub.retry_base_delay;
SHOW synchub.retry_max_delay;
SELECT pg_temp.err($$SET synchub.retry_max_delay = '-1'$$);
SELECT pg_temp.err($$SET synchub.no_such_setting = 1$$);
