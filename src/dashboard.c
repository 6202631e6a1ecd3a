/*-------------------------------------------------------------------------
 * dashboard.c
 *    synchub._dashboard_agg: the aggregate behind campaign_dashboard, which
 *    merges hourly rollup rows into the campaign_metrics JSON plus response
 *    times and an hourly series.
 *
 * One pass over the rows: counts add, the distinct sketches of each kind
 * merge (hll.c), the response-time sketches merge (sketch.c), and each row's
 * hour, counts and uniques are kept for the series.  The final function
 * builds the jsonb directly: for a month of hours that is most of the
 * work, and parsing or concatenating jsonb would double it.  Memory is the
 * merged sketches (at most 16 kB per kind and one sketch) plus 104 bytes per
 * hour of the range.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "hll.h"
#include "metrics.h"
#include "sketch.h"

typedef struct DashHour
{
	TimestampTz hour;
	int64		counts[METRICS_KINDS];
	int64		uniques[METRICS_KINDS];
} DashHour;

typedef struct DashState
{
	int64		counts[METRICS_KINDS];
	HllState   *leads[METRICS_KINDS];
	SketchState *response;
	DashHour   *hours;
	int			nhours;
	int			maxhours;
} DashState;

/* argument positions: hour, counts, uniques, lead sketches, response sketch */
#define ARG_HOUR		1
#define ARG_COUNTS		2
#define ARG_UNIQUES		(ARG_COUNTS + METRICS_KINDS)
#define ARG_LEADS		(ARG_UNIQUES + METRICS_KINDS)
#define ARG_RESPONSE	(ARG_LEADS + METRICS_KINDS)

PG_FUNCTION_INFO_V1(synchub_dashboard_add);
Datum
synchub_dashboard_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggctx;
	MemoryContext old;
	DashState  *state;
	DashHour   *h;
	int			i;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "dashboard aggregate called in non-aggregate context");
	old = MemoryContextSwitchTo(aggctx);
	if (PG_ARGISNULL(0))
	{
		state = palloc0(sizeof(DashState));
		for (i = 0; i < METRICS_KINDS; i++)
			state->leads[i] = hll_state_create(aggctx);
		state->response = sketch_state_create(aggctx);
		state->maxhours = 64;
		state->hours = palloc(sizeof(DashHour) * state->maxhours);
	}
	else
		state = (DashState *) PG_GETARG_POINTER(0);
	if (state->nhours == state->maxhours)
	{
		state->maxhours *= 2;
		state->hours = repalloc_huge(state->hours, sizeof(DashHour) * state->maxhours);
	}
	MemoryContextSwitchTo(old);

	h = &state->hours[state->nhours++];
	h->hour = PG_ARGISNULL(ARG_HOUR) ? DT_NOBEGIN : PG_GETARG_TIMESTAMPTZ(ARG_HOUR);
	for (i = 0; i < METRICS_KINDS; i++)
	{
		h->counts[i] = PG_ARGISNULL(ARG_COUNTS + i) ? 0 : PG_GETARG_INT64(ARG_COUNTS + i);
		h->uniques[i] = PG_ARGISNULL(ARG_UNIQUES + i) ? 0 : PG_GETARG_INT64(ARG_UNIQUES + i);
		state->counts[i] += h->counts[i];
		if (!PG_ARGISNULL(ARG_LEADS + i))
			hll_state_add_stored(state->leads[i], PG_GETARG_BYTEA_PP(ARG_LEADS + i));
	}
	if (!PG_ARGISNULL(ARG_RESPONSE))
		sketch_state_add_sketch(state->response, PG_GETARG_SKETCH_P(ARG_RESPONSE));
	PG_RETURN_POINTER(state);
}

static int
hour_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const DashHour *) a)->hour;
	TimestampTz y = ((const DashHour *) b)->hour;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * ISO 8601 in UTC, as to_jsonb writes a timestamptz when TimeZone is UTC;
 * palloc'd, since the jsonb being built keeps the pointer.
 */
static char *
hour_text(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_IS_NOBEGIN(t))
		return pstrdup("-infinity");
	if (TIMESTAMP_IS_NOEND(t))
		return pstrdup("infinity");
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d+00:00",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
push_response(JsonbParseState **ps, const Sketch *response)
{
	static const struct
	{
		const char *key;
		double		q;
	}			qs[] = {{"p50", 0.5}, {"p95", 0.95}};
	int			i;

	metrics_json_key(ps, "response_seconds");
	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	metrics_json_key(ps, "count");
	metrics_json_int(ps, (int64) response->count);
	for (i = 0; i < lengthof(qs); i++)
	{
		metrics_json_key(ps, qs[i].key);
		metrics_json_float(ps, response->count ? sketch_quantile(response, qs[i].q) : 0.0,
						   response->count == 0);
	}
	pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

PG_FUNCTION_INFO_V1(synchub_dashboard_final);
Datum
synchub_dashboard_final(PG_FUNCTION_ARGS)
{
	DashState  *state = PG_ARGISNULL(0) ? NULL : (DashState *) PG_GETARG_POINTER(0);
	int64		zeros[METRICS_KINDS] = {0};
	int64		uniques[METRICS_KINDS] = {0};
	JsonbParseState *ps = NULL;
	JsonbValue *res;
	SketchState *empty;
	int			i;

	if (state)
	{
		for (i = 0; i < METRICS_KINDS; i++)
			uniques[i] = hll_state_count(state->leads[i]);
		qsort(state->hours, state->nhours, sizeof(DashHour), hour_cmp);
	}

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	funnel_push_json(&ps, state ? state->counts : zeros, uniques);
	empty = state ? state->response : sketch_state_create(CurrentMemoryContext);
	push_response(&ps, sketch_state_flatten(empty));
	metrics_json_key(&ps, "hourly");
	pushJsonbValue(&ps, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; state && i < state->nhours; i++)
	{
		DashHour   *h = &state->hours[i];

		CHECK_FOR_INTERRUPTS();
		pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
		metrics_json_key(&ps, "hour");
		metrics_json_string(&ps, hour_text(h->hour));
		funnel_push_kinds(&ps, "counts", h->counts);
		funnel_push_kinds(&ps, "unique", h->uniques);
		pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&ps, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
