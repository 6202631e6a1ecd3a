/*-------------------------------------------------------------------------
 * worker.c
 *    The per-database worker: claims jobs of queue "synchub" whose kind it
 *    implements, runs many at once on the HTTP engine, and records each
 *    outcome.
 *
 * Transactions are short and never span network I/O: one to claim a
 * batch, one to record a batch of outcomes, one now and then to extend the
 * leases of the jobs in flight and to reap expired leases.  Between them
 * the worker drives curl, waiting at most WAIT_SLICE_MS at a time so
 * interrupts, new work and SIGHUP are seen promptly.  A commit that
 * enqueues work sets the worker's latch (worker_control.c); the poll
 * (synchub.poll_interval) is only the fallback, and picks up retries whose
 * run_at has come.
 *
 * Each claim marks the job's worker column "synchub:<database oid>:<pid>".
 * At start the worker gives back every running job that a previous worker
 * of its database left behind (it died: a crash, kill -9): their leases are
 * expired and synchub.reap() returns them to pending (dead on the last
 * attempt), attempt counted.  Lease expiry stays the fallback.
 *
 * A sync job (full_import, incremental_sync, export; sync_job.c) is a
 * sequence of requests: when its response arrives, step_pages() stores the
 * page and plans the next request in a short transaction (shared by the
 * pages that arrived together, each in a subtransaction), which puts it
 * back in flight, until it ends with an outcome like any other job.  The
 * loop also runs due schedules every poll and the metric rollups every
 * synchub.rollup_interval.
 *
 * Every claimed job lives in its own memory context, deleted once its
 * outcome is committed; per-iteration allocations go to a context reset
 * every loop, so memory does not grow with the number of jobs.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "http_job.h"
#include "queue.h"
#include "metrics.h"
#include "sync_job.h"
#include "synchub.h"
#include "worker.h"
#include "worker_limits.h"
#include "worker_shmem.h"

#define WAIT_SLICE_MS		100
#define LEASE_S				300
/*
 * Pages whose responses arrived together are stored in one transaction (one
 * WAL flush), each in a subtransaction of its own (sync_job.c): an error
 * rolls back only its page.  Requests planned there leave after the commit.
 */
#define PAGES_PER_XACT	32
#define LEASE_EXTEND_MS		60000
#define REAP_MS				30000
#define NSTATEMENTS			5

/* ---- settings ---- */
int			synchub_max_concurrent_requests = 64;
int			synchub_poll_interval = 1000;
char	   *synchub_allowed_hosts = NULL;
int			synchub_http_timeout = 30000;
int			synchub_max_response_size = 1024;
char	   *synchub_user_agent = NULL;

typedef struct InFlight
{
	dlist_node	node;
	SynchubJob	job;
	SynchubOutcome outcome;
} InFlight;

PGDLLEXPORT void synchub_worker_main(Datum arg);

static int	my_slot = -1;
static char worker_name[64];
static MemoryContext jobs_cxt;
static MemoryContext xact_caller_cxt;	/* current before begin_xact(), again after end_xact() */
static dlist_head inflight = DLIST_STATIC_INIT(inflight);
static int	ninflight = 0;
static int64 latest_id = 0;		/* the job started last, for pg_stat_activity */
static char latest_kind[32];
static dlist_head finished = DLIST_STATIC_INIT(finished);
static dlist_head pages = DLIST_STATIC_INIT(pages);	/* sync responses to step */
static SPIPlanPtr plans[NSTATEMENTS];

enum
{
	STMT_CLAIM, STMT_COMPLETE, STMT_FAIL, STMT_RESCHEDULE, STMT_EXTEND
};

static const char *const statements[NSTATEMENTS] = {
	/* STMT_CLAIM: $1 max jobs, $2 worker, $3 keys that refuse requests now */
	/*
	 * The ids go through an array, not a join: a generic plan of a join
	 * with a LIMIT sub-select hashes the whole queue on every claim.
	 */
	"WITH u AS ("
	"  UPDATE synchub.job_queue q"
	"     SET state = 'running', attempts = q.attempts + 1,"
	"         lease_until = clock_timestamp() + interval '" CppAsString2(LEASE_S) " s',"
	"         started_at = clock_timestamp(), worker = $2"
	"   WHERE q.id = ANY (ARRAY("
	"  SELECT c.id FROM synchub.job_queue c"
	"   WHERE c.queue = 'synchub' AND c.state = 'pending' AND c.run_at <= clock_timestamp()"
	"     AND (c.kind = 'http' OR (c.kind IN ('full_import', 'incremental_sync', 'export')"
	"          AND NOT EXISTS (SELECT FROM synchub.integrations i WHERE i.id = c.integration_id"
	"                  AND (i.status = 'disabled' OR (i.status = 'paused'"
	"                       AND coalesce(i.paused_until > clock_timestamp(), true))))))"
	"     AND (cardinality($3) = 0 OR synchub._job_rate_key(c.kind, c.payload, c.integration_id) <> ALL ($3))"
	"   ORDER BY c.priority, c.run_at, c.id LIMIT $1 FOR UPDATE SKIP LOCKED))"
	"  RETURNING q.*)"
	" SELECT u.id, u.attempts, u.max_attempts, u.kind, u.payload,"
	"        synchub._job_rate_key(u.kind, u.payload, u.integration_id),"
	"        synchub._notify_job(ROW(u.*)::synchub.job_queue) IS NULL,"
	"        u.integration_id, u.checkpoint"
	"   FROM u",
	/*
	 * STMT_COMPLETE: ids, attempts, results — synchub.complete() for a batch
	 * in one statement (the same row moves, with the same NOTIFY).
	 */
	"WITH r AS (SELECT * FROM unnest($1::bigint[], $2::integer[], $3::jsonb[]) AS r(id, attempt, result)),"
	" d AS (DELETE FROM synchub.job_queue q USING r"
	"        WHERE q.id = r.id AND q.state = 'running' AND q.attempts = r.attempt"
	"       RETURNING q.*, r.result AS new_result),"
	" i AS (INSERT INTO synchub.job_history"
	"       SELECT d.id, d.queue, d.kind, d.integration_id, d.payload, d.priority, 'succeeded',"
	"              d.run_at, d.attempts, d.max_attempts, NULL, d.dedup_key, d.records_processed,"
	"              d.records_total, d.checkpoint, d.new_result, d.last_error, d.created_at,"
	"              d.started_at, clock_timestamp(), d.worker, d.owner"
	"         FROM d RETURNING *)"
	" SELECT * FROM i",
	/* STMT_FAIL: id, error, retryable, attempt */
	"SELECT synchub.fail($1, $2, $3, $4)",
	/* STMT_RESCHEDULE: id, attempt, delay seconds, note; not an attempt */
	"WITH u AS ("
	"  UPDATE synchub.job_queue q"
	"     SET state = 'pending', attempts = q.attempts - 1, lease_until = NULL, worker = NULL,"
	"         run_at = clock_timestamp() + make_interval(secs => $3),"
	"         last_error = coalesce($4, q.last_error)"
	"   WHERE q.id = $1 AND q.state = 'running' AND q.attempts = $2 RETURNING q.*)"
	" SELECT synchub._notify_job(ROW(u.*)::synchub.job_queue) FROM u",
	/* STMT_EXTEND: ids */
	"UPDATE synchub.job_queue q"
	"   SET lease_until = clock_timestamp() + interval '" CppAsString2(LEASE_S) " s'"
	" WHERE q.id = ANY ($1) AND q.state = 'running' AND q.worker = $2"
};

static const int nargs[NSTATEMENTS] = {3, 3, 4, 4, 2};
static const Oid argtypes[NSTATEMENTS][4] = {
	{INT4OID, TEXTOID, TEXTARRAYOID},
	{INT8ARRAYOID, INT4ARRAYOID, JSONBARRAYOID},
	{INT8OID, TEXTOID, BOOLOID, INT4OID},
	{INT8OID, INT4OID, FLOAT8OID, TEXTOID},
	{INT8ARRAYOID, TEXTOID}
};

void
synchub_worker_define_settings(void)
{
	/* a postmaster setting can only be defined at start-up */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("synchub.max_workers",
								"Most synchub workers running at once (one per database).",
								NULL, &synchub_max_workers,
								8, 1, 1024, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("synchub.max_concurrent_requests",
							"Requests a worker runs at once.",
							NULL, &synchub_max_concurrent_requests,
							64, 1, 10000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("synchub.poll_interval",
							"How often an idle worker looks for due jobs when nothing wakes it.",
							NULL, &synchub_poll_interval,
							1000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomStringVariable("synchub.allowed_hosts",
							   "Hosts and addresses http jobs may connect to.",
							   "Comma-separated: * (any public address), host names, .domain suffixes, addresses and networks (10.0.0.0/8).",
							   &synchub_allowed_hosts,
							   "*", PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("synchub.http_timeout",
							"Default total timeout of an http job's request.",
							NULL, &synchub_http_timeout,
							30000, 1, 3600000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("synchub.max_response_size",
							"Largest response body an http job accepts.",
							NULL, &synchub_max_response_size,
							/* at most 128 MB: even base64-encoded it fits a jsonb string */
							1024, 1, 128 * 1024, PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomStringVariable("synchub.user_agent",
							   "User-Agent header of http jobs (a payload header overrides it).",
							   NULL, &synchub_user_agent,
							   "synchub/" SYNCHUB_VERSION, PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* Leave the slot: the launcher (or nobody) will start a successor. */
static void
worker_detach(int code, Datum arg)
{
	SynchubWorkerShared *s = synchub_shmem();
	SynchubWorkerSlot *slot = &s->slots[my_slot];
	bool		free_it;

	SpinLockAcquire(&s->mutex);
	slot->pid = 0;
	slot->latch = NULL;
	free_it = !slot->by_launcher;
	SpinLockRelease(&s->mutex);
	if (free_it)
		synchub_shmem_free_slot(my_slot);
}

/* The extension is gone: leave for good. */
static void
leave_absent(void)
{
	SynchubWorkerShared *s = synchub_shmem();

	SpinLockAcquire(&s->mutex);
	s->slots[my_slot].absent = true;
	SpinLockRelease(&s->mutex);
	AbortCurrentTransaction();
	proc_exit(0);
}

static void
begin_xact(const char *activity)
{
	xact_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	if (!OidIsValid(get_extension_oid("synchub", true)))
		leave_absent();
}

static void
end_xact(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* the commit leaves TopMemoryContext current: back to the loop's */
	MemoryContextSwitchTo(xact_caller_cxt);
	pgstat_report_stat(false);
}

static void
report_idle(void)
{
	char		buf[128];

	if (ninflight == 0)
		pgstat_report_activity(STATE_IDLE, "synchub worker: idle");
	else
	{
		snprintf(buf, sizeof(buf), "synchub worker: running %d jobs, latest job %lld (%s)",
				 ninflight, (long long) latest_id, latest_kind);
		pgstat_report_activity(STATE_IDLE, buf);
	}
}

static SPIPlanPtr
plan(int stmt)
{
	if (plans[stmt] == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(statements[stmt], nargs[stmt], (Oid *) argtypes[stmt]);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		plans[stmt] = p;
	}
	return plans[stmt];
}

static void
execute(int stmt, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_plan(plan(stmt), values, nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

/* Look up the extension owner and run as that role from now on. */
static void
become_extension_owner(void)
{
	bool		isnull;
	Oid			owner;

	begin_xact("synchub worker: starting");
	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'synchub'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		leave_absent();
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	end_xact();
	SetUserIdAndSecContext(owner, SECURITY_LOCAL_USERID_CHANGE);
}

/*
 * Give back the jobs a previous worker of this database was running when
 * it died: expire their leases and let reap() do the rest.
 */
static void
recover_orphans(Oid dboid)
{
	Datum		values[2];
	Oid			types[2] = {TEXTOID, TEXTOID};

	begin_xact("synchub worker: recovering jobs of a previous worker");
	values[0] = CStringGetTextDatum(psprintf("synchub:%u:%%", dboid));
	values[1] = CStringGetTextDatum(worker_name);
	if (SPI_execute_with_args("UPDATE synchub.job_queue q SET lease_until = clock_timestamp() - interval '1 s'"
							  " WHERE q.queue = 'synchub' AND q.state = 'running'"
							  "   AND q.worker LIKE $1 AND q.worker <> $2",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not recover the jobs of a previous worker");
	if (SPI_processed > 0)
	{
		ereport(LOG,
				(errmsg("synchub worker: %llu jobs of a previous worker go back to the queue",
						(unsigned long long) SPI_processed)));
		SPI_execute("SELECT synchub.reap()", false, 0);
	}
	end_xact();
}

/* synchub_ratelimit_blocked_keys() as a text[] */
static Datum
blocked_keys(TimestampTz now)
{
	List	   *keys = synchub_ratelimit_blocked_keys(now);
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(keys) + 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, keys)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Claim up to n jobs and start them; returns how many were claimed. */
static int
claim_and_start(int n)
{
	static TimestampTz next_config = 0;
	List	   *started = NIL;
	ListCell   *lc;
	Datum		values[3];
	uint64		got;
	SPITupleTable *claimed;
	TimestampTz now = GetCurrentTimestamp();

	begin_xact("synchub worker: claiming jobs");
	if (now >= next_config)
	{
		worker_limits_load();
		next_config = TimestampTzPlusMilliseconds(now, 1000);
	}
	values[0] = Int32GetDatum(n);
	values[1] = CStringGetTextDatum(worker_name);
	values[2] = blocked_keys(now);
	execute(STMT_CLAIM, values, NULL);
	got = SPI_processed;
	claimed = SPI_tuptable;		/* starting a job may run SPI itself */
	if (got > 0)
	{
		/*
		 * Starting the jobs reads with the active snapshot: one taken now
		 * sees all the claim saw (an integration committed after this
		 * transaction began, with the job that syncs it).
		 */
		PopActiveSnapshot();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	for (uint64 i = 0; i < got; i++)
	{
		HeapTuple	tup = claimed->vals[i];
		TupleDesc	desc = claimed->tupdesc;
		MemoryContext cxt = AllocSetContextCreate(jobs_cxt, "synchub job", ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		InFlight   *f = palloc0(sizeof(InFlight));
		bool		isnull;
		long		wait_ms;
		Datum		value;

		f->job.cxt = cxt;
		f->job.id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		f->job.attempt = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		f->job.max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		f->job.kind = SPI_getvalue(tup, desc, 4);
		f->job.payload = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 5, &isnull));
		f->job.what = psprintf("job %lld", (long long) f->job.id);
		f->job.rate_key = SPI_getvalue(tup, desc, 6);
		value = SPI_getbinval(tup, desc, 8, &isnull);
		f->job.integration_id = isnull ? 0 : DatumGetInt64(value);
		value = SPI_getbinval(tup, desc, 9, &isnull);
		f->job.checkpoint = isnull ? NULL : DatumGetJsonbPCopy(value);
		if (f->job.rate_key && f->job.integration_id != 0 && !worker_limits_known(f->job.rate_key))
		{
			/* an integration created since the last load: its budget first */
			worker_limits_load();
			next_config = TimestampTzPlusMilliseconds(now, 1000);
		}
		if (f->job.rate_key && !synchub_ratelimit_acquire(f->job.rate_key, now, &wait_ms))
		{
			/* the key is full: back to pending, no attempt used */
			f->outcome.kind = SYNCHUB_RESCHEDULE;
			f->outcome.delay_s = wait_ms / 1000.0;
			dlist_push_tail(&finished, &f->node);
		}
		else if (sync_job_kind(f->job.kind) ? sync_job_start(&f->job, &f->outcome)
				 : synchub_job_guarded(synchub_http_job_start, &f->job, &f->outcome))
		{
			latest_id = f->job.id;
			strlcpy(latest_kind, f->job.kind, sizeof(latest_kind));
			dlist_push_tail(&inflight, &f->node);
			ninflight++;
			started = lappend(started, f);
		}
		else
			dlist_push_tail(&finished, &f->node);
		MemoryContextSwitchTo(old);
	}
	end_xact();
	/* the requests leave now that the claim is committed */
	foreach(lc, started)
	{
		InFlight   *f = (InFlight *) lfirst(lc);

		if (f->job.rate_key)
			synchub_ratelimit_restamp(f->job.rate_key, now, GetCurrentTimestamp());
	}
	list_free(started);
	return (int) got;
}

/*
 * Run a job's action in a subtransaction of the open transaction: an ERROR
 * fails the attempt (the job is retried with backoff, then dead) instead of
 * ending the worker.
 */
bool
synchub_job_guarded(SynchubJobAction action, SynchubJob *job, SynchubOutcome *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		more = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		more = action(job, out);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(job->cxt);
		e = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		out->kind = SYNCHUB_RETRY;
		out->error = MemoryContextStrdup(job->cxt, e->message);
		more = false;
	}
	PG_END_TRY();
	return more;
}

/* Record every succeeded job of the finished list in one statement. */
static void
record_succeeded(void)
{
	dlist_iter	it;
	int			n = 0;
	int			cap = 16;
	Datum	   *ids = palloc(sizeof(Datum) * cap);
	Datum	   *attempts = palloc(sizeof(Datum) * cap);
	Datum	   *results = palloc(sizeof(Datum) * cap);
	Datum		values[3];

	dlist_foreach(it, &finished)
	{
		InFlight   *f = dlist_container(InFlight, node, it.cur);

		if (f->outcome.kind != SYNCHUB_SUCCEEDED)
			continue;
		if (n == cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(Datum) * cap);
			attempts = repalloc(attempts, sizeof(Datum) * cap);
			results = repalloc(results, sizeof(Datum) * cap);
		}
		ids[n] = Int64GetDatum(f->job.id);
		attempts[n] = Int32GetDatum(f->job.attempt);
		results[n] = JsonbPGetDatum(f->outcome.result);
		n++;
	}
	if (n == 0)
		return;
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(attempts, n, INT4OID, 4, true, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(results, n, JSONBOID, -1, false, TYPALIGN_INT));
	execute(STMT_COMPLETE, values, NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
		queue_notify_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
}

/* Commit the outcomes of the finished jobs and free them. */
static void
record_finished(void)
{
	dlist_mutable_iter it;

	if (dlist_is_empty(&finished))
		return;
	begin_xact("synchub worker: recording outcomes");
	record_succeeded();
	dlist_foreach_modify(it, &finished)
	{
		InFlight   *f = dlist_container(InFlight, node, it.cur);
		SynchubOutcome *o = &f->outcome;
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};

		values[0] = Int64GetDatum(f->job.id);
		switch (o->kind)
		{
			case SYNCHUB_SUCCEEDED:
				break;			/* done by record_succeeded() */
			case SYNCHUB_RECORDED:
				break;			/* committed by the job itself */
			case SYNCHUB_RETRY:
			case SYNCHUB_DEAD:
				values[1] = CStringGetTextDatum(o->error);
				values[2] = BoolGetDatum(o->kind == SYNCHUB_RETRY);
				values[3] = Int32GetDatum(f->job.attempt);
				execute(STMT_FAIL, values, nulls);
				break;
			case SYNCHUB_RESCHEDULE:
				values[1] = Int32GetDatum(f->job.attempt);
				values[2] = Float8GetDatum(o->delay_s);
				if (o->error)
					values[3] = CStringGetTextDatum(o->error);
				else
					nulls[3] = 'n';
				execute(STMT_RESCHEDULE, values, nulls);
				break;
		}
	}
	end_xact();
	dlist_foreach_modify(it, &finished)
	{
		InFlight   *f = dlist_container(InFlight, node, it.cur);

		dlist_delete(it.cur);
		MemoryContextDelete(f->job.cxt);
	}
}

/* Move every finished request to the finished list with its outcome. */
static void
collect_finished(void)
{
	void	   *tag;
	SynchubHttpResult *res;

	while (synchub_http_next_done(&tag, &res))
	{
		SynchubJob *job = tag;
		InFlight   *f = (InFlight *) ((char *) job - offsetof(InFlight, job));
		MemoryContext old = MemoryContextSwitchTo(job->cxt);

		if (job->sync)
			sync_job_response(job, res, &f->outcome);
		else
			synchub_http_job_finish(job, res, &f->outcome);
		if (job->rate_key)
			synchub_ratelimit_observe(job->rate_key, f->outcome.rate_event,
									  f->outcome.blocked_until, GetCurrentTimestamp());
		synchub_http_result_free(res);
		MemoryContextSwitchTo(old);
		dlist_delete(&f->node);
		ninflight--;
		dlist_push_tail(job->sync ? &pages : &finished, &f->node);
	}
}

/* Step each sync job whose response arrived, one transaction per page. */
static void
step_pages(void)
{
	dlist_mutable_iter it;
	int			n = 0;
	MemoryContext cxt = CurrentMemoryContext;	/* reset every loop */

	dlist_foreach_modify(it, &pages)
	{
		InFlight   *f = dlist_container(InFlight, node, it.cur);
		MemoryContext old;
		bool		more;

		dlist_delete(it.cur);
		if (n == 0)
			begin_xact("synchub worker: storing sync pages");
		else
		{
			/* each page sees what the pages before it in this transaction wrote */
			CommandCounterIncrement();
			PopActiveSnapshot();
			PushActiveSnapshot(GetTransactionSnapshot());
		}
		old = MemoryContextSwitchTo(cxt);
		more = sync_job_step(&f->job, &f->outcome);
		MemoryContextSwitchTo(old);
		if (++n == PAGES_PER_XACT)
		{
			end_xact();
			n = 0;
		}
		if (more)
		{
			dlist_push_tail(&inflight, &f->node);
			ninflight++;
		}
		else
			dlist_push_tail(&finished, &f->node);
	}
	if (n > 0)
		end_xact();
	CHECK_FOR_INTERRUPTS();
}

static void
extend_leases(void)
{
	dlist_iter	it;
	Datum	   *ids;
	Datum		values[2];
	int			n = 0;

	if (ninflight == 0)
		return;
	ids = palloc(sizeof(Datum) * ninflight);
	dlist_foreach(it, &inflight)
		ids[n++] = Int64GetDatum(dlist_container(InFlight, node, it.cur)->job.id);
	begin_xact("synchub worker: extending leases");
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = CStringGetTextDatum(worker_name);
	execute(STMT_EXTEND, values, NULL);
	end_xact();
}

static void
reap_expired(void)
{
	begin_xact("synchub worker: reaping expired leases");
	SPI_execute("SELECT synchub.reap()", false, 0);
	end_xact();
}

/*
 * Run a housekeeping statement in a transaction of its own; an error is
 * logged and the loop goes on.
 */
static void
run_periodic(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		begin_xact(sql);
		SPI_execute(sql, false, 0);
		end_xact();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

void
synchub_worker_main(Datum arg)
{
	SynchubWorkerShared *s;
	Oid			dboid;
	MemoryContext loop_cxt;
	TimestampTz next_poll = 0;
	TimestampTz next_extend;
	TimestampTz next_reap;
	TimestampTz next_schedules = 0;
	TimestampTz next_rollups = 0;
	bool		more = true;

	my_slot = DatumGetInt32(arg);
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	s = synchub_shmem();
	SpinLockAcquire(&s->mutex);
	if (!s->slots[my_slot].in_use || s->slots[my_slot].dboid != dboid)
	{
		SpinLockRelease(&s->mutex);
		proc_exit(0);
	}
	s->slots[my_slot].pid = MyProcPid;
	s->slots[my_slot].latch = MyLatch;
	SpinLockRelease(&s->mutex);
	before_shmem_exit(worker_detach, 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* what the worker writes came from the provider: never export it back */
	SetConfigOption("synchub.capture_changes", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * Its statements are short and many: compiling one with JIT, or
	 * starting parallel workers for it, costs more than running it.
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("max_parallel_workers_per_gather", "0", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * It runs as a superuser: no schema a database user can create objects
	 * in is searched for the functions and operators of its statements.
	 * (A target's own code runs as the table's owner with the default path,
	 * table_owner.c.)
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	snprintf(worker_name, sizeof(worker_name), "synchub:%u:%d", dboid, (int) MyProcPid);
	jobs_cxt = AllocSetContextCreate(TopMemoryContext, "synchub worker jobs", ALLOCSET_DEFAULT_SIZES);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "synchub worker loop", ALLOCSET_DEFAULT_SIZES);
	synchub_http_init();

	while (RecoveryInProgress())
	{
		pgstat_report_activity(STATE_IDLE, "synchub worker: waiting for recovery to end");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 synchub_poll_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	become_extension_owner();
	recover_orphans(dboid);
	next_extend = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LEASE_EXTEND_MS);
	next_reap = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), REAP_MS);
	next_rollups = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), synchub_rollup_interval * 1000L);
	report_idle();

	for (;;)
	{
		TimestampTz now;
		bool		woken;
		int			room;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		woken = MyLatch->is_set;
		if (woken)
			ResetLatch(MyLatch);
		old = MemoryContextSwitchTo(loop_cxt);
		now = GetCurrentTimestamp();
		room = synchub_max_concurrent_requests - ninflight;

		/* claim when woken, when the poll is due, or while a backlog remains */
		if (room > 0 && (woken || now >= next_poll || (more && (ninflight == 0 || room * 4 >= synchub_max_concurrent_requests))))
		{
			more = claim_and_start(room) == room;
			next_poll = TimestampTzPlusMilliseconds(now, synchub_poll_interval);
		}
		if (ninflight > 0)
			synchub_http_perform(dlist_is_empty(&finished) ? WAIT_SLICE_MS : 0);
		collect_finished();
		step_pages();
		record_finished();
		if (now >= next_extend)
		{
			extend_leases();
			next_extend = TimestampTzPlusMilliseconds(now, LEASE_EXTEND_MS);
		}
		if (now >= next_reap)
		{
			reap_expired();
			next_reap = TimestampTzPlusMilliseconds(now, REAP_MS);
		}
		if (now >= next_schedules)
		{
			run_periodic("SELECT count(*) FROM synchub._due_schedules()");
			next_schedules = TimestampTzPlusMilliseconds(now, synchub_poll_interval);
		}
		if (now >= next_rollups)
		{
			run_periodic("SELECT synchub.refresh_rollups()");
			next_rollups = TimestampTzPlusMilliseconds(now, synchub_rollup_interval * 1000L);
		}
		report_idle();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_cxt);

		if (ninflight == 0 && !more)
		{
			long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_poll);

			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Max(ms, 1), PG_WAIT_EXTENSION);
		}
	}
}
