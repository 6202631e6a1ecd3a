/*-------------------------------------------------------------------------
 * campaign_metrics.c
 *    synchub.campaign_metrics(kind, lead_id): the funnel of a campaign as
 *    jsonb, and synchub._funnel_json, which gives the rollup dashboard the
 *    same shape.
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

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"

#include "metrics.h"

#define FUNNEL_KINDS 6

static const char *const funnel_kinds[FUNNEL_KINDS] =
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
		funnel_add_lead(state, e->lead, e->kinds);
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
	uint32		n;
	int			i;

	buf.data = VARDATA_ANY(data);
	buf.len = VARSIZE_ANY_EXHDR(data);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "campaign_metrics called in non-aggregate context");
	state = funnel_create(aggctx, 64);
	for (i = 0; i < FUNNEL_KINDS; i++)
		state->counts[i] = pq_getmsgint64(&buf);
	n = pq_getmsgint(&buf, 4);
	leadset_grow(state->leads, Max(64, n * 2));
	while (n-- > 0)
	{
		int64		lead = pq_getmsgint64(&buf);

		funnel_add_lead(state, lead, (uint8) pq_getmsgbyte(&buf));
	}
	PG_RETURN_POINTER(state);
}

/*---- the JSON shape ----*/

static void
append_rate(StringInfo buf, const char *name, int64 num, int64 den)
{
	appendStringInfo(buf, ",\"%s\":", name);
	if (den == 0)
		appendStringInfoString(buf, "null");
	else
		appendStringInfoString(buf, float8out_internal((double) num / (double) den));
}

/*
 * {"counts": {kind: events}, "unique": {kind: leads}, "open_rate": …,
 *  "click_rate": …, "reply_rate": …, "bounce_rate": …}; a rate is unique
 * leads of its kind over unique delivered leads, or over unique sent leads
 * when none was delivered, and null when both are zero.
 */
static Datum
funnel_json(const int64 *counts, const int64 *uniques)
{
	StringInfoData buf;
	int64		den = uniques[KIND_DELIVERED] > 0 ? uniques[KIND_DELIVERED] : uniques[KIND_SENT];
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"counts\":{");
	for (i = 0; i < FUNNEL_KINDS; i++)
		appendStringInfo(&buf, "%s\"%s\":" INT64_FORMAT, i ? "," : "", funnel_kinds[i], counts[i]);
	appendStringInfoString(&buf, "},\"unique\":{");
	for (i = 0; i < FUNNEL_KINDS; i++)
		appendStringInfo(&buf, "%s\"%s\":" INT64_FORMAT, i ? "," : "", funnel_kinds[i], uniques[i]);
	appendStringInfoChar(&buf, '}');
	append_rate(&buf, "open_rate", uniques[KIND_OPENED], den);
	append_rate(&buf, "click_rate", uniques[KIND_CLICKED], den);
	append_rate(&buf, "reply_rate", uniques[KIND_REPLIED], den);
	append_rate(&buf, "bounce_rate", uniques[KIND_BOUNCED], den);
	appendStringInfoChar(&buf, '}');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
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

/* Six bigints, in kind order, from an array argument. */
static void
funnel_array_arg(FunctionCallInfo fcinfo, int argno, const char *name, int64 *out)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(argno);
	Datum	   *values;
	bool	   *nulls;
	int			n;
	int			i;

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &values, &nulls, &n);
	if (n != FUNNEL_KINDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have %d elements", name, FUNNEL_KINDS),
				 errdetail("It has %d.", n)));
	for (i = 0; i < FUNNEL_KINDS; i++)
		out[i] = nulls[i] ? 0 : DatumGetInt64(values[i]);
}

PG_FUNCTION_INFO_V1(synchub_funnel_json);
Datum
synchub_funnel_json(PG_FUNCTION_ARGS)
{
	int64		counts[FUNNEL_KINDS];
	int64		uniques[FUNNEL_KINDS];

	funnel_array_arg(fcinfo, 0, "counts", counts);
	funnel_array_arg(fcinfo, 1, "uniques", uniques);
	PG_RETURN_DATUM(funnel_json(counts, uniques));
}
