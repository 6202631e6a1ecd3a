/*-------------------------------------------------------------------------
 * synchub.c
 *    Library entry point: settings, and the few functions that belong to
 *    no module.
 *
 * _PG_init defines every synchub.* setting and reserves the prefix.  The
 * queue itself is SQL (sql/install/10_queue.sql); it reads synchub.notify
 * and the retry delays through current_setting(), so the settings work
 * whether or not the library is preloaded.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "compat.h"
#include "launcher.h"
#include "metrics.h"
#include "ratelimit.h"
#include "synchub.h"
#include "upsert.h"
#include "worker.h"
#include "worker_control.h"
#include "worker_shmem.h"

PG_MODULE_MAGIC;

/*---- GUC variables ----*/
bool		synchub_notify = true;
int			synchub_retry_base_delay = 10;
int			synchub_retry_max_delay = 3600;
static bool synchub_capture_changes = true;

void		_PG_init(void);

static void
define_queue_settings(void)
{
	DefineCustomBoolVariable("synchub.notify",
							 "Sends NOTIFY synchub_jobs on every job state change and progress report.",
							 NULL,
							 &synchub_notify,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("synchub.retry_base_delay",
							"Delay before the first retry of a failed job; doubles with every attempt.",
							NULL,
							&synchub_retry_base_delay,
							10, 0, 86400,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("synchub.retry_max_delay",
							"Upper bound of the delay between two attempts of a failed job.",
							NULL,
							&synchub_retry_max_delay,
							3600, 0, 7 * 86400,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("synchub.capture_changes",
							 "Queues changed rows of exporting integrations for export.",
							 "Off, writes to target tables are not exported (the worker's own writes never are).",
							 &synchub_capture_changes,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

void
_PG_init(void)
{
	define_queue_settings();
	metrics_define_settings();
	upsert_planner_init();
	synchub_worker_define_settings();
	synchub_shmem_init();
	synchub_ratelimit_init();
	synchub_launcher_init();
	synchub_worker_control_init();

	MarkGUCPrefixReserved("synchub");
}

PG_FUNCTION_INFO_V1(synchub_version);
Datum
synchub_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(SYNCHUB_VERSION));
}

PG_FUNCTION_INFO_V1(synchub_random_bytes);
Datum
synchub_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *result;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of random bytes must be between 1 and 1024")));

	result = (bytea *) palloc(VARHDRSZ + n);
	SET_VARSIZE(result, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(result), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_BYTEA_P(result);
}
