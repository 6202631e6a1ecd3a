/*-------------------------------------------------------------------------
 * dashboard.c
 *    synchub._dashboard_agg: the aggregate behind campaign_dashboard, which
 *    merges hourly rollup rows into the campaign_metrics JSON plus response
 *    times and an hourly series.
 *
 * One pass over the rows: counts add, the distinct sketches of each kind
 * merge (hll.c), the response-time sketches merge (sketch.c), and each row's
 * hour, counts and uniques are kept for the series.  The final function
 * builds the jsonb directly (the series as one tree, below): for a month of
 * hours that is most of the work, and parsing or concatenating jsonb would
 * double it.  Memory is the merged sketches (at most 16 kB per kind and one
 * sketch) plus 104 bytes per hour of the range, and about 1.2 kB per hour
 * while the final function builds the result.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
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

/* ISO 8601 in UTC, as to_jsonb writes a timestamptz when TimeZone is UTC */
#define HOUR_TEXT_MAX 32

static int
hour_text(TimestampTz t, char *buf)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_IS_NOBEGIN(t))
		return snprintf(buf, HOUR_TEXT_MAX, "-infinity");
	if (TIMESTAMP_IS_NOEND(t))
		return snprintf(buf, HOUR_TEXT_MAX, "infinity");
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return snprintf(buf, HOUR_TEXT_MAX, "%04d-%02d-%02dT%02d:%02d:%02d+00:00",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The hourly series is built as a JsonbValue tree in a few allocations and
 * converted once.  Pushing it value by value (pushJsonbValue) allocated and
 * copied for each of the 13 values of every hour, and for a month of hours
 * that was most of the dashboard's time.  Nothing sorts the keys of these
 * objects, so they are laid out in jsonb's key order (shorter first, then
 * bytewise): "hour", "counts", "unique", and the kinds in kind_order.
 */
#define SMALL_INTS		1024	/* counts below this share one Numeric per call */
#define HOUR_PAIRS		(3 + 2 * METRICS_KINDS)

static int	kind_order[METRICS_KINDS];
static bool kind_order_done = false;

static int
key_cmp(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

static int
pair_cmp(const void *a, const void *b)
{
	const JsonbValue *x = &((const JsonbPair *) a)->key;
	const JsonbValue *y = &((const JsonbPair *) b)->key;

	return key_cmp(x->val.string.val, x->val.string.len, y->val.string.val, y->val.string.len);
}

static void
compute_kind_order(void)
{
	for (int i = 0; i < METRICS_KINDS; i++)
	{
		int			j = i;

		/* insertion sort of the kind indexes by their names */
		for (; j > 0; j--)
		{
			const char *a = funnel_kinds[kind_order[j - 1]];

			if (key_cmp(a, strlen(a), funnel_kinds[i], strlen(funnel_kinds[i])) <= 0)
				break;
			kind_order[j] = kind_order[j - 1];
		}
		kind_order[j] = i;
	}
	kind_order_done = true;
}

static void
set_string(JsonbValue *v, const char *s, int len)
{
	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = len;
}

static Numeric
int_numeric(Numeric *cache, int64 value)
{
	if (value < 0 || value >= SMALL_INTS)
		return int64_to_numeric(value);
	if (cache[value] == NULL)
		cache[value] = int64_to_numeric(value);
	return cache[value];
}

/* the pair "key": {kind: value, ...}, the kinds' pairs laid out at kinds */
static void
set_kinds(JsonbPair *pair, const char *key, JsonbPair *kinds, const int64 *values, Numeric *cache)
{
	set_string(&pair->key, key, strlen(key));
	pair->value.type = jbvObject;
	pair->value.val.object.nPairs = METRICS_KINDS;
	pair->value.val.object.pairs = kinds;
	for (int i = 0; i < METRICS_KINDS; i++)
	{
		const char *name = funnel_kinds[kind_order[i]];

		set_string(&kinds[i].key, name, strlen(name));
		kinds[i].value.type = jbvNumeric;
		kinds[i].value.val.numeric = int_numeric(cache, values[kind_order[i]]);
		kinds[i].order = i;
	}
}

static void
build_series(JsonbValue *array, const DashHour *hours, int n)
{
	Numeric    *cache = palloc0(sizeof(Numeric) * SMALL_INTS);
	JsonbValue *elems = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(JsonbValue) * Max(n, 1));
	JsonbPair  *pairs = MemoryContextAllocHuge(CurrentMemoryContext,
											   sizeof(JsonbPair) * HOUR_PAIRS * Max(n, 1));
	char	   *text = MemoryContextAllocHuge(CurrentMemoryContext, (Size) HOUR_TEXT_MAX * Max(n, 1));

	if (!kind_order_done)
		compute_kind_order();
	array->type = jbvArray;
	array->val.array.nElems = n;
	array->val.array.elems = elems;
	array->val.array.rawScalar = false;
	for (int i = 0; i < n; i++)
	{
		JsonbPair  *p = pairs + (Size) i * HOUR_PAIRS;
		char	   *t = text + (Size) i * HOUR_TEXT_MAX;

		CHECK_FOR_INTERRUPTS();
		elems[i].type = jbvObject;
		elems[i].val.object.nPairs = 3;
		elems[i].val.object.pairs = p;
		set_string(&p[0].key, "hour", 4);
		set_string(&p[0].value, t, hour_text(hours[i].hour, t));
		p[0].order = 0;
		set_kinds(&p[1], "counts", p + 3, hours[i].counts, cache);
		p[1].order = 1;
		set_kinds(&p[2], "unique", p + 3 + METRICS_KINDS, hours[i].uniques, cache);
		p[2].order = 2;
	}
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
	JsonbPair  *pairs;
	JsonbPair  *hourly;
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
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);

	/* add "hourly" to the finished object, keeping its keys in order */
	pairs = palloc(sizeof(JsonbPair) * (res->val.object.nPairs + 1));
	memcpy(pairs, res->val.object.pairs, sizeof(JsonbPair) * res->val.object.nPairs);
	hourly = &pairs[res->val.object.nPairs];
	set_string(&hourly->key, "hourly", 6);
	hourly->order = res->val.object.nPairs;
	build_series(&hourly->value, state ? state->hours : NULL, state ? state->nhours : 0);
	res->val.object.pairs = pairs;
	res->val.object.nPairs++;
	qsort(pairs, res->val.object.nPairs, sizeof(JsonbPair), pair_cmp);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
