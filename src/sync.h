/*-------------------------------------------------------------------------
 * sync.h
 *    The database side of a sync run (src/sync.c): parse a page, store its
 *    rows, report progress, finish or pause.  Each call runs inside the
 *    caller's transaction.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_SYNC_H
#define SYNCHUB_SYNC_H

#include "postgres.h"

#include "utils/jsonb.h"

#include "upsert.h"

/* One parsed response: a page of rows, or a classified error. */
typedef struct SyncPage
{
	char	   *error_class;	/* NULL: a page */
	char	   *error_message;	/* "HTTP 401 CODE: message" */
	bool		refresh;		/* auth: a token refresh may help */
	double		wait_ms;		/* rate_limited, quota: -1 when unknown */
	Jsonb	   *rows;			/* rows of the target table */
	Jsonb	   *checkpoint;		/* where the next request starts */
	bool		done;
	bool		has_total;
	int64		total;
	int64		read;			/* records read in the run */
	Jsonb	   *bookmark;		/* when done */
} SyncPage;

extern bool sync_integration(int64 integration_id, char **provider, Oid *target);
extern void sync_record_call(int64 integration_id, double latency_ms, int status);
extern void sync_parse_page(int64 integration_id, const char *provider, const char *mode,
							Jsonb *checkpoint, Jsonb *response, SyncPage *page);
extern void sync_store_rows(Oid target, int64 job_id, int64 integration_id, Jsonb *rows,
							UpsertCounts *counts);
extern void sync_export_apply(int64 job_id, int64 integration_id, Jsonb *results, SyncPage *page);
extern void sync_progress(int64 job_id, int32 attempt, const SyncPage *page,
						  const UpsertCounts *counts);
extern void sync_finish(int64 integration_id, const char *status, Jsonb *bookmark, const char *error);
extern void sync_complete(int64 job_id, int32 attempt, const UpsertCounts *counts, int64 read);
extern void sync_pause(int64 integration_id, double seconds, const char *reason);
extern bool sync_can_refresh(int64 integration_id);
extern Jsonb *sync_refresh_payload(int64 integration_id);

#endif							/* SYNCHUB_SYNC_H */
