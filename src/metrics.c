/*-------------------------------------------------------------------------
 * metrics.c
 *    Settings of the metrics module.
 *
 * synchub.rollup_interval is how often the background worker calls
 * synchub.refresh_rollups(); the rollup itself is SQL
 * (sql/install/50_metrics.sql) and may equally be called by hand or by any
 * scheduler.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "metrics.h"

/*---- GUC variables ----*/
int			synchub_rollup_interval = 60;

void
metrics_define_settings(void)
{
	DefineCustomIntVariable("synchub.rollup_interval",
							"Interval between two runs of synchub.refresh_rollups() by the background worker.",
							NULL,
							&synchub_rollup_interval,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}
