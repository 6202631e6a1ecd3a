/*-------------------------------------------------------------------------
 * campaign_metrics.c
 *    synchub.campaign_metrics(kind, lead_id): the funnel of a campaign as
 *    jsonb; funnel_push_json gives the rollup dashboard the same shape.
 *
 * The state counts events per kind and keeps one hash table entry per
 * distinct lead: its id and a bit per kind the lead was seen with.  Unique
 * leads per kind are the entries with that bit, counted at the end; memory
 * is therefore about 16 bytes per distinct lead (not per event), plus the
 * table's spare slots, and it lives in the aggregate context.  For parallel
 * query the state serialises to the counts and the (lead, kinds) pairs, and
 * the combine function ORs the pairs of the smaller table into the larger.
 *
 * NULL kinds are skipped; an event with a NULL lead counts but has no
 * lead to make unique; an unknown kind is an error.  Over no events the
 * result has zero counts and null rates, not NULL.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "metrics.h"

#define FUNNEL_KINDS METRICS_KINDS

const char *const funnel_kinds[FUNNEL_KINDS] =
{"sent", "delivered", "opened", "clicked", "replied", "bounced"};

enum
{
	KIND_SENT, KIND_DELIVERED, KIND_OPENED, KIND_CLICKED, KIND_REPLIED, KIND_BOUNCED
};

typedef struct LeadEntry
{
	int64		lead;
	uint8		kinds;			/* bit per kind */
	char		status;			/* simplehash */
} LeadEntry;

#define SH_PREFIX		leadset
#define SH_ELEMENT_TYPE LeadEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			lead
#define SH_HASH_KEY(tb, key) ((uint32) metrics_hash64((uint64) (key)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct FunnelState
{
	int64		counts[FUNNEL_KINDS];
	leadset_hash *leads;
} FunnelState;

static int
funnel_kind_index(text *kind)
{
	const char *s = VARDATA_ANY(kind);
	int			len = VARSIZE_ANY_EXHDR(kind);
	int			i;

	for (i = 0; i < FUNNEL_KINDS; i++)
		if ((int) strlen(funnel_kinds[i]) == len && memcmp(s, funnel_kinds[i], len) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid event kind \"%s\"", text_to_cstring(kind)),
			 errhint("Kinds are sent, delivered, opened, clicked, replied and bounced.")));
	return -1;					/* keep the compiler quiet */
}

static FunnelState *
funnel_create(MemoryContext ctx, uint32 size)
{
	FunnelState *state = MemoryContextAllocZero(ctx, sizeof(FunnelState));

	state->leads = leadset_create(ctx, Max(size, 64), NULL);
	return state;
}

static inline void
funnel_add_lead(FunnelState *state, int64 lead, uint8 kinds)
{
	bool		found;
	LeadEntry  *e = leadset_insert(state->leads, lead, &found);

	e->kinds = found ? (e->kinds | kinds) : kinds;
}

static FunnelState *
funnel_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggctx;

	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "campaign_metrics called in non-aggregate context");
	if (!PG_ARGISNULL(0))
		return (FunnelState *) PG_GETARG_POINTER(0);
	return funnel_create(aggctx, 64);
}

PG_FUNCTION_INFO_V1(synchub_funnel_add);
Datum
synchub_funnel_add(PG_FUNCTION_ARGS)
{
	FunnelState *state;
	int			kind;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	kind = funnel_kind_index(PG_GETARG_TEXT_PP(1));
	state = funnel_state(fcinfo);
	state->counts[kind]++;
	if (!PG_ARGISNULL(2))
		funnel_add_lead(state, PG_GETARG_INT64(2), (uint8) (1 << kind));
	PG_RETURN_POINTER(state);
}

/*
 * The second state is consumed: deserialised states are built in the
 * aggregate context for this, so the first one is adopted as it is and the
 * smaller of two is merged into the larger, then freed.
 */
PG_FUNCTION_INFO_V1(synchub_funnel_combine);
Datum
synchub_funnel_combine(PG_FUNCTION_ARGS)
{
	FunnelState *state;
	FunnelState *other;
	leadset_iterator it;
	LeadEntry  *e;
	int			i;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "campaign_metrics called in non-aggregate context");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	other = (FunnelState *) PG_GETARG_POINTER(1);
	if (PG_ARGISNULL(0))
		PG_RETURN_POINTER(other);
	state = (FunnelState *) PG_GETARG_POINTER(0);
	if (other->leads->members > state->leads->members)
	{
		FunnelState *swap = state;

		state = other;
		other = swap;
	}
	for (i = 0; i < FUNNEL_KINDS; i++)
		state->counts[i] += other->counts[i];
	leadset_start_iterate(other->leads, &it);
	while ((e = leadset_iterate(other->leads, &it)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		funnel_add_lead(state, e->lead, e->kinds);
	}
	leadset_destroy(other->leads);
	pfree(other);
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(synchub_funnel_serialize);
Datum
synchub_funnel_serialize(PG_FUNCTION_ARGS)
{
	FunnelState *state = (FunnelState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	leadset_iterator it;
	LeadEntry  *e;
	int			i;

	pq_begintypsend(&buf);
	for (i = 0; i < FUNNEL_KINDS; i++)
		pq_sendint64(&buf, state->counts[i]);
	pq_sendint32(&buf, state->leads->members);
	leadset_start_iterate(state->leads, &it);
	while ((e = leadset_iterate(state->leads, &it)) != NULL)
	{
		pq_sendint64(&buf, e->lead);
		pq_sendbyte(&buf, e->kinds);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(synchub_funnel_deserialize);
Datum
synchub_funnel_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	FunnelState *state;
	MemoryContext aggctx;
	int64		counts[FUNNEL_KINDS];
	uint32		n;
	int			i;

	buf.data = VARDATA_ANY(data);
	buf.len = VARSIZE_ANY_EXHDR(data);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "campaign_metrics called in non-aggregate context");
	for (i = 0; i < FUNNEL_KINDS; i++)
		counts[i] = pq_getmsgint64(&buf);
	n = pq_getmsgint(&buf, 4);
	state = funnel_create(aggctx, n);
	memcpy(state->counts, counts, sizeof(counts));
	while (n-- > 0)
	{
		int64		lead = pq_getmsgint64(&buf);

		CHECK_FOR_INTERRUPTS();
		funnel_add_lead(state, lead, (uint8) pq_getmsgbyte(&buf));
	}
	PG_RETURN_POINTER(state);
}

/*---- the JSON shape ----*/

/* Into an open object: key: {kind: value}. */
void
funnel_push_kinds(JsonbParseState **ps, const char *key, const int64 *values)
{
	int			i;

	metrics_json_key(ps, key);
	pushJsonbValue(ps, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < FUNNEL_KINDS; i++)
	{
		metrics_json_key(ps, funnel_kinds[i]);
		metrics_json_int(ps, values[i]);
	}
	pushJsonbValue(ps, WJB_END_OBJECT, NULL);
}

static void
push_rate(JsonbParseState **ps, const char *key, int64 num, int64 den)
{
	metrics_json_key(ps, key);
	metrics_json_float(ps, den ? (double) num / (double) den : 0.0, den == 0);
}

/*
 * Into an open object: "counts": {kind: events}, "unique": {kind: leads},
 * "open_rate", "click_rate", "reply_rate", "bounce_rate".  A rate is unique
 * leads of its kind over unique delivered leads, or over unique sent leads
 * when none was delivered, and null when both are zero.
 */
void
funnel_push_json(JsonbParseState **ps, const int64 *counts, const int64 *uniques)
{
	int64		den = uniques[KIND_DELIVERED] > 0 ? uniques[KIND_DELIVERED] : uniques[KIND_SENT];

	funnel_push_kinds(ps, "counts", counts);
	funnel_push_kinds(ps, "unique", uniques);
	push_rate(ps, "open_rate", uniques[KIND_OPENED], den);
	push_rate(ps, "click_rate", uniques[KIND_CLICKED], den);
	push_rate(ps, "reply_rate", uniques[KIND_REPLIED], den);
	push_rate(ps, "bounce_rate", uniques[KIND_BOUNCED], den);
}

static Datum
funnel_json(const int64 *counts, const int64 *uniques)
{
	JsonbParseState *ps = NULL;
	JsonbValue *res;

	pushJsonbValue(&ps, WJB_BEGIN_OBJECT, NULL);
	funnel_push_json(&ps, counts, uniques);
	res = pushJsonbValue(&ps, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

PG_FUNCTION_INFO_V1(synchub_funnel_final);
Datum
synchub_funnel_final(PG_FUNCTION_ARGS)
{
	FunnelState *state;
	int64		uniques[FUNNEL_KINDS] = {0};
	leadset_iterator it;
	LeadEntry  *e;
	int			i;

	/* no events: zero counts, null rates */
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(funnel_json(uniques, uniques));
	state = (FunnelState *) PG_GETARG_POINTER(0);
	leadset_start_iterate(state->leads, &it);
	while ((e = leadset_iterate(state->leads, &it)) != NULL)
		for (i = 0; i < FUNNEL_KINDS; i++)
			if (e->kinds & (1 << i))
				uniques[i]++;
	PG_RETURN_DATUM(funnel_json(state->counts, uniques));
}
