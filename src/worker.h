/*-------------------------------------------------------------------------
 * worker.h
 *    The per-database worker: settings, and the job and outcome shapes the
 *    job kinds share.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_WORKER_H
#define SYNCHUB_WORKER_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "ratelimit.h"

/* ---- settings ---- */
extern int	synchub_max_concurrent_requests;
extern int	synchub_poll_interval;	/* ms */
extern char *synchub_allowed_hosts;
extern int	synchub_http_timeout;	/* ms */
extern int	synchub_max_response_size;	/* kB */
extern char *synchub_user_agent;

/* A claimed job, in its own memory context (freed when it finishes). */
typedef struct SynchubJob
{
	int64		id;
	int32		attempt;
	int32		max_attempts;
	char	   *kind;
	Jsonb	   *payload;
	MemoryContext cxt;
	char	   *what;			/* "GET https://host/path": redacted, for errors */
	char	   *rate_key;		/* rate limits and circuit breaker; NULL: none */
	long		timeout_ms;
	int64		integration_id; /* 0: none */
	Jsonb	   *checkpoint;		/* as claimed; NULL: none */
	struct SyncJob *sync;		/* sync kinds: the run's state (sync_job.c) */
} SynchubJob;

typedef enum SynchubOutcomeKind
{
	SYNCHUB_SUCCEEDED,
	SYNCHUB_RETRY,				/* failed attempt; retry with backoff */
	SYNCHUB_DEAD,				/* failed; no retry */
	SYNCHUB_RESCHEDULE,			/* not an attempt: run again after delay_s */
	SYNCHUB_RECORDED			/* the job committed its own outcome */
} SynchubOutcomeKind;

typedef struct SynchubOutcome
{
	SynchubOutcomeKind kind;
	Jsonb	   *result;			/* SUCCEEDED */
	char	   *error;			/* RETRY, DEAD; note for RESCHEDULE */
	double		delay_s;		/* RESCHEDULE */
	SynchubRateEvent rate_event;	/* what it says of the key's health */
	TimestampTz blocked_until;	/* the server asks for no request before */
} SynchubOutcome;

typedef bool (*SynchubJobAction) (SynchubJob *job, SynchubOutcome *out);

extern void synchub_worker_define_settings(void);
extern bool synchub_job_guarded(SynchubJobAction action, SynchubJob *job, SynchubOutcome *out);

#endif							/* SYNCHUB_WORKER_H */
