/*-------------------------------------------------------------------------
 * sync_job.c
 *    The job kinds full_import and incremental_sync: a sync run as a
 *    sequence of requests inside the worker's loop.
 *
 * A sync job is in flight with one request at a time.  The worker calls:
 *
 *   sync_job_start()     at the claim: plan the first request (from the
 *                        job's checkpoint when a previous attempt left one)
 *                        and submit it;
 *   sync_job_response()  outside any transaction, when the response (or
 *                        failure) arrives: keep it;
 *   sync_job_step()      in a short transaction of its own: parse the page,
 *                        upsert its rows, store the checkpoint and counts on
 *                        the job, and either plan and submit the next
 *                        request (true: the job stays in flight) or end
 *                        with an outcome.
 *
 * An export run writes instead of reading: each request sends a batch of
 * captured rows, and its step stores the per-record results
 * (sync_export_apply); it ends when the planner has nothing left to send.
 *
 * The credential is added by providers_next_request() and lives only in
 * the request context until curl has copied it.  Each request after the
 * first takes a token from the integration's rate key; when none is left
 * the job goes back to pending (no attempt used) and resumes from its
 * checkpoint.  Errors of the parser by class: auth refreshes the token once
 * and repeats the page; rate_limited reschedules at the wait; quota pauses
 * the integration and reschedules; restart re-plans from the checkpoint the
 * parser returns; retryable fails the attempt (backoff, the checkpoint
 * stays); fatal ends the job dead.  An ERROR while stepping is caught in a
 * subtransaction and fails the attempt.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "http_job.h"
#include "providers.h"
#include "sync.h"
#include "sync_job.h"

#define DEFAULT_RATE_WAIT_S		1.0
#define DEFAULT_QUOTA_WAIT_S	3600.0
#define MAX_WAIT_S			86400.0	/* a longer Retry-After or reset waits a day */

typedef struct SyncJob
{
	const char *mode;			/* "full", "incremental" or "export" */
	char	   *provider;
	Oid			target;
	Jsonb	   *ck;				/* where the next request starts; NULL: run start */
	MemoryContext req_cxt;		/* the request in flight and its response */
	Jsonb	   *req_ck;			/* the checkpoint planned with that request */
	Jsonb	   *response;		/* {"status", "headers", "body"}; NULL: none */
	int			status;			/* 0: no response */
	char	   *transport_error;	/* no usable response: why */
	bool		transport_dead;
	bool		refreshing;		/* the request in flight is a token refresh */
	bool		refreshed;
	TimestampTz sent_at;
	double		latency_ms;
	UpsertCounts counts;
} SyncJob;


bool
sync_job_kind(const char *kind)
{
	return strcmp(kind, "full_import") == 0 || strcmp(kind, "incremental_sync") == 0 ||
		strcmp(kind, "export") == 0;
}

static JsonbValue *
member(Jsonb *j, const char *key)
{
	JsonbValue	k;

	if (j == NULL || !JB_ROOT_IS_OBJECT(j))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&j->root, JB_FOBJECT, &k);
}

static Jsonb *
member_jsonb(Jsonb *j, const char *key)
{
	JsonbValue *v = member(j, key);

	return (v == NULL || v->type == jbvNull) ? NULL : JsonbValueToJsonb(v);
}

/* Submit an http payload; the payload (it holds a secret) is wiped. */
static bool
submit(SynchubJob *job, SynchubOutcome *out, Jsonb *request)
{
	Jsonb	   *payload = job->payload;
	bool		ok;

	job->payload = request;
	ok = synchub_http_job_start(job, out);
	job->payload = payload;
	job->sync->sent_at = GetCurrentTimestamp();
	explicit_bzero(request, VARSIZE(request));
	return ok;
}

/* A count in the checkpoint (0 when absent or not a count). */
static int64
ck_count(Jsonb *ck, const char *key)
{
	JsonbValue *v = member(ck, key);
	int64		n;

	return v && v->type == jbvNumeric && synchub_numeric_int64(v->val.numeric, 0, PG_INT64_MAX, &n)
		? n : 0;
}

/* The run's counts kept in a checkpoint under "counts" (zeros without). */
static void
checkpoint_counts(Jsonb *ck, UpsertCounts *c)
{
	Jsonb	   *counts = member_jsonb(ck, "counts");

	c->inserted = ck_count(counts, "inserted");
	c->updated = ck_count(counts, "updated");
	c->unchanged = ck_count(counts, "unchanged");
	c->rejected = ck_count(counts, "rejected");
}

/* An export run sent everything: its counts are in the checkpoint. */
static bool
finished(SynchubJob *job, SynchubOutcome *out, Jsonb *ck)
{
	UpsertCounts c;

	checkpoint_counts(ck, &c);
	sync_finish(job->integration_id, "succeeded", NULL, NULL);
	sync_complete(job->id, job->attempt, &c, ck_count(ck, "read"));
	out->kind = SYNCHUB_RECORDED;
	return false;
}

/*
 * A request with its own windows (request_rate_limit) also takes a token
 * of the key "<integration key>:<request name>"; false, with the wait,
 * when that key refuses.
 */
static bool
request_window(SynchubJob *job, Jsonb *req, long *wait_ms)
{
	JsonbValue *own = member(req, "request_rate_limit");
	JsonbValue *name = member(job->sync->req_ck, "request");
	char	   *key;

	*wait_ms = 0;
	if (own == NULL || own->type == jbvNull || name == NULL || name->type != jbvString ||
		job->rate_key == NULL)
		return true;
	key = psprintf("%s:%.*s", job->rate_key, name->val.string.len, name->val.string.val);
	return synchub_ratelimit_acquire(key, GetCurrentTimestamp(), wait_ms);
}

/* Plan the next request from the checkpoint and submit it. */
static bool
plan_and_submit(SynchubJob *job, SynchubOutcome *out, bool acquire)
{
	SyncJob    *s = job->sync;
	MemoryContext old;
	Jsonb	   *req;
	long		wait_ms;
	bool		ok;

	if (acquire && !synchub_ratelimit_acquire(job->rate_key, GetCurrentTimestamp(), &wait_ms))
	{
		/* the integration's budget is spent: resume from the checkpoint later */
		out->kind = SYNCHUB_RESCHEDULE;
		out->delay_s = wait_ms / 1000.0;
		out->error = NULL;
		return false;
	}
	MemoryContextReset(s->req_cxt);
	s->response = NULL;
	old = MemoryContextSwitchTo(s->req_cxt);
	req = providers_next_request(job->integration_id, s->mode, s->ck);
	s->req_ck = member_jsonb(req, "checkpoint");
	if (member(req, "done") != NULL)
	{
		/* an export with nothing left to send */
		MemoryContextSwitchTo(old);
		return finished(job, out, s->req_ck);
	}
	if (!request_window(job, req, &wait_ms))
	{
		/* the request's own window is full (HubSpot search): later */
		explicit_bzero(req, VARSIZE(req));
		MemoryContextSwitchTo(old);
		out->kind = SYNCHUB_RESCHEDULE;
		out->delay_s = wait_ms / 1000.0;
		out->error = NULL;
		return false;
	}
	ok = submit(job, out, req);
	MemoryContextSwitchTo(old);
	return ok;
}

static bool
start(SynchubJob *job, SynchubOutcome *out)
{
	SyncJob    *s = job->sync;

	if (!sync_integration(job->integration_id, &s->provider, &s->target))
	{
		out->kind = SYNCHUB_DEAD;
		out->error = psprintf("integration %lld does not exist", (long long) job->integration_id);
		return false;
	}
	return plan_and_submit(job, out, false);
}

/* At the claim, in its transaction and in the job's memory context. */
bool
sync_job_start(SynchubJob *job, SynchubOutcome *out)
{
	SyncJob    *s = palloc0(sizeof(SyncJob));

	job->sync = s;
	s->mode = strcmp(job->kind, "full_import") == 0 ? "full"
		: strcmp(job->kind, "export") == 0 ? "export" : "incremental";
	s->ck = job->checkpoint;
	/* a resumed run goes on counting from where its checkpoint left off */
	checkpoint_counts(job->checkpoint, &s->counts);
	s->req_cxt = AllocSetContextCreate(job->cxt, "synchub sync request", ALLOCSET_DEFAULT_SIZES);
	if (job->integration_id == 0)
	{
		out->kind = SYNCHUB_DEAD;
		out->error = pstrdup("sync job without an integration");
		return false;
	}
	return synchub_job_guarded(start, job, out);
}

/* The response arrived (no transaction is open): keep it. */
void
sync_job_response(SynchubJob *job, SynchubHttpResult *res, SynchubOutcome *out)
{
	SyncJob    *s = job->sync;
	SynchubOutcome http;
	MemoryContext old = MemoryContextSwitchTo(s->req_cxt);

	memset(&http, 0, sizeof(http));
	s->latency_ms = (double) (GetCurrentTimestamp() - s->sent_at) / 1000.0;
	synchub_http_job_finish(job, res, &http);
	out->rate_event = http.rate_event;
	out->blocked_until = http.blocked_until;
	s->status = res->error == SYNCHUB_HTTP_OK ? (int) res->status : 0;
	s->transport_error = NULL;
	s->transport_dead = false;
	if (res->error != SYNCHUB_HTTP_OK)
	{
		s->response = NULL;
		s->transport_error = http.error;
		s->transport_dead = http.kind == SYNCHUB_DEAD;
	}
	else
		s->response = http.kind == SYNCHUB_SUCCEEDED ? http.result : synchub_http_job_result(res);
	MemoryContextSwitchTo(old);
}

/* The checkpoint the next request starts from, in the job's context. */
static void
keep_checkpoint(SynchubJob *job, Jsonb *ck)
{
	SyncJob    *s = job->sync;

	if (s->ck)
		pfree(s->ck);
	s->ck = MemoryContextAlloc(job->cxt, VARSIZE(ck));
	memcpy(s->ck, ck, VARSIZE(ck));
}

/* The run failed for good: record it on the integration too. */
static bool
dead(SynchubJob *job, SynchubOutcome *out, char *error)
{
	sync_finish(job->integration_id, "failed", NULL, error);
	out->kind = SYNCHUB_DEAD;
	out->error = error;
	return false;
}

/* The response of a token refresh: store the tokens, repeat the page. */
static bool
refreshed(SynchubJob *job, SynchubOutcome *out)
{
	SyncJob    *s = job->sync;
	Jsonb	   *body = member_jsonb(s->response, "body");

	s->refreshing = false;
	s->refreshed = true;
	if (s->status >= 200 && s->status < 300 && body && JB_ROOT_IS_OBJECT(body) &&
		providers_refresh_apply(job->integration_id, body))
	{
		bool		ok;

		/* plan with a snapshot that sees the new token */
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
		ok = plan_and_submit(job, out, true);
		PopActiveSnapshot();
		return ok;
	}
	return dead(job, out, psprintf("%s: token refresh failed%s", job->what,
								   s->status ? psprintf(" with HTTP %d", s->status) : ""));
}

static bool
step(SynchubJob *job, SynchubOutcome *out)
{
	SyncJob    *s = job->sync;
	bool		export = strcmp(s->mode, "export") == 0;
	SyncPage	page;
	char	   *message;
	MemoryContext old;
	bool		ok;

	sync_record_call(job->integration_id, s->latency_ms, s->status);
	if (s->transport_dead)
		return dead(job, out, pstrdup(s->transport_error));
	if (s->refreshing)
		return refreshed(job, out);

	sync_parse_page(job->integration_id, s->provider, s->mode, s->req_ck, s->response, &page);
	if (page.error_class == NULL)
	{
		if (page.rows && export)
			sync_export_apply(job->id, job->integration_id, page.rows, &page);
		else if (page.rows)
			sync_store_rows(s->target, job->id, job->integration_id, page.rows, &s->counts);
		sync_progress(job->id, job->attempt, &page, export ? NULL : &s->counts);
		if (page.done)
		{
			sync_finish(job->integration_id, "succeeded", page.bookmark, NULL);
			sync_complete(job->id, job->attempt, &s->counts, page.read);
			out->kind = SYNCHUB_RECORDED;
			return false;
		}
		keep_checkpoint(job, page.checkpoint);
		return plan_and_submit(job, out, true);
	}

	message = s->transport_error ? pstrdup(s->transport_error)
		: psprintf("%s: %s error: %s", job->what, page.error_class, page.error_message);
	if (strcmp(page.error_class, "auth") == 0)
	{
		if (!page.refresh || s->refreshed || !sync_can_refresh(job->integration_id))
			return dead(job, out, message);
		MemoryContextReset(s->req_cxt);
		s->response = NULL;
		s->refreshing = true;
		old = MemoryContextSwitchTo(s->req_cxt);
		ok = submit(job, out, sync_refresh_payload(job->integration_id));
		MemoryContextSwitchTo(old);
		return ok;
	}
	if (strcmp(page.error_class, "rate_limited") == 0 || strcmp(page.error_class, "quota") == 0)
	{
		bool		quota = page.error_class[0] == 'q';

		out->kind = SYNCHUB_RESCHEDULE;
		out->delay_s = page.wait_ms >= 0 ? Min(page.wait_ms / 1000.0, MAX_WAIT_S)
			: (quota ? DEFAULT_QUOTA_WAIT_S : DEFAULT_RATE_WAIT_S);
		out->error = message;
		if (quota)
			sync_pause(job->integration_id, out->delay_s, message);
		return false;
	}
	if (strcmp(page.error_class, "restart") == 0)
	{
		page.has_total = false;
		sync_progress(job->id, job->attempt, &page, export ? NULL : &s->counts);
		keep_checkpoint(job, page.checkpoint);
		return plan_and_submit(job, out, true);
	}
	if (strcmp(page.error_class, "retryable") == 0)
	{
		if (job->attempt >= job->max_attempts)
			sync_finish(job->integration_id, "failed", NULL, message);
		out->kind = SYNCHUB_RETRY;
		out->error = message;
		return false;
	}
	return dead(job, out, message);
}

/*
 * In a transaction of its own and a memory context reset after the outcome
 * is recorded: true when the next request is in flight.  What must outlive
 * the step is copied into the job's context.
 */
bool
sync_job_step(SynchubJob *job, SynchubOutcome *out)
{
	return synchub_job_guarded(step, job, out);
}
