/*-------------------------------------------------------------------------
 * metrics.c
 *    Settings and jsonb helpers of the metrics module.
 *
 * Also the small jsonb builders the funnel and the dashboard share: values
 * are pushed straight into a JsonbParseState, numbers converted the way
 * to_jsonb converts them (floats through their shortest exact text).
 *
 * synchub.rollup_interval is how often the background worker calls
 * synchub.refresh_rollups(); the rollup itself is SQL
 * (sql/install/50_metrics.sql) and may equally be called by hand or by any
 * scheduler.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/numeric.h"

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

void
metrics_json_key(JsonbParseState **ps, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(ps, WJB_KEY, &v);
}

void
metrics_json_int(JsonbParseState **ps, int64 value)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(ps, WJB_VALUE, &v);
}

void
metrics_json_float(JsonbParseState **ps, double value, bool isnull)
{
	JsonbValue	v;

	if (isnull)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
															CStringGetDatum(float8out_internal(value)),
															ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1)));
	}
	pushJsonbValue(ps, WJB_VALUE, &v);
}

void
metrics_json_string(JsonbParseState **ps, const char *value)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) value;
	v.val.string.len = strlen(value);
	pushJsonbValue(ps, WJB_VALUE, &v);
}
