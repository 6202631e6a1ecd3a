/*-------------------------------------------------------------------------
 * sketch.c
 *    synchub.sketch: the DDSketch store, its aggregates (sketch_agg,
 *    sketch_merge), sketch_union and quantile.
 *
 * A positive value x falls in bucket k = ceil(log(x) / log(gamma)), with
 * gamma = 2^(1/36); the bucket's estimate 2 gamma^k / (gamma + 1) is within
 * a relative distance a = (gamma - 1) / (gamma + 1) = 0.00963 of every value
 * in (gamma^(k-1), gamma^k].  a is a little under the promised 1%, so that
 * rounding cannot push an estimate past 1%; 36 buckets per power of two let
 * the key come from the binary exponent and a small table instead of a
 * logarithm.  Negative values go to a mirrored store keyed by magnitude,
 * zeros to a counter.
 *
 * The size is bounded: a store spans at most SKETCH_MAX_BINS keys (a factor
 * of about 1.3e17 between its smallest and largest magnitude); keys below
 * the span collapse into its lowest bucket, so only values that much
 * smaller than the largest of their sign lose the guarantee.  A flattened
 * sketch always collapses at the same place (SKETCH_MAX_BINS - 1 keys below
 * its highest), so the order of values and merges does not change it.
 *
 * Quantiles use the rank of percentile_disc: the value at position
 * ceil(q * n) (at least 1) in sorted order.  The exact minimum and maximum
 * are kept; q = 0 and q = 1 return them, and every estimate is clamped
 * into [min, max].
 *
 * Aggregates keep an internal SketchState (dense counts, allocated in the
 * aggregate context) and serialise to the Sketch varlena for parallel
 * query; the combine function merges states.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "sketch.h"

#define SKETCH_KEY_LIMIT 40000	/* |key| of any finite double is below this */
#define SKETCH_SLACK	32		/* least number of keys a store grows by */

/*
 * Bucket keys without a logarithm: x = m 2^e with m in [1, 2), and the key is
 * 36 e + (the least j with 2^(j/36) >= m).  bounds[] holds the 37 powers
 * 2^(j/36); cell_first[i] is the least j whose power is at least the start
 * of the i-th 1/256 of [1, 2).  A cell is narrower than the gap between two
 * powers, so the answer is cell_first[i] or the next one.
 */
static double bounds[SKETCH_KEYS_PER_OCTAVE + 1];
static uint8 cell_first[256];
static double key_value_factor = 0.0;	/* 2 / (gamma + 1) */

static void
sketch_init_tables(void)
{
	int			i;
	int			j = 0;

	for (i = 0; i <= SKETCH_KEYS_PER_OCTAVE; i++)
		bounds[i] = exp2((double) i / SKETCH_KEYS_PER_OCTAVE);
	for (i = 0; i < 256; i++)
	{
		while (bounds[j] < 1.0 + i / 256.0)
			j++;
		cell_first[i] = (uint8) j;
	}
	key_value_factor = 2.0 / (1.0 + bounds[1]);
}

static inline int32
sketch_key(double magnitude)
{
	int			e;
	double		m;
	int			j;

	if (unlikely(key_value_factor == 0.0))
		sketch_init_tables();
	m = frexp(magnitude, &e) * 2.0;
	j = cell_first[(int) ((m - 1.0) * 256.0)];
	if (m > bounds[j])
		j++;
	return (e - 1) * SKETCH_KEYS_PER_OCTAVE + j;
}

static inline double
sketch_key_value(int32 key)
{
	if (unlikely(key_value_factor == 0.0))
		sketch_init_tables();
	return key_value_factor * exp2((double) key / SKETCH_KEYS_PER_OCTAVE);
}

/*---- dense stores ----*/

/* Move a store to keys [lo, hi]; counts of keys below lo go to lo. */
static void
store_reframe(MemoryContext ctx, SketchStore *s, int32 lo, int32 hi)
{
	int32		span = hi - lo + 1;
	uint64	   *counts;
	int32		i;

	Assert(span > 0 && span <= SKETCH_MAX_BINS);
	counts = MemoryContextAllocZero(ctx, sizeof(uint64) * span);
	for (i = 0; i < s->nbins; i++)
	{
		int32		key = s->offset + i;

		if (s->counts[i] == 0)
			continue;
		Assert(key <= hi);
		counts[Max(key, lo) - lo] += s->counts[i];
	}
	if (s->counts)
		pfree(s->counts);
	s->counts = counts;
	s->offset = lo;
	s->nbins = span;
	s->capacity = span;
}

/* Highest key with a count (the span above it is slack). */
static int32
store_top(const SketchStore *s)
{
	int32		i = s->nbins - 1;

	while (i > 0 && s->counts[i] == 0)
		i--;
	return s->offset + i;
}

static void
store_add_outside(MemoryContext ctx, SketchStore *s, int32 key, uint64 n)
{
	if (s->nbins == 0)
		store_reframe(ctx, s, key - SKETCH_SLACK, key + SKETCH_SLACK);
	else if (key < s->offset)
	{
		int32		lowest = store_top(s) - SKETCH_MAX_BINS + 1;

		if (s->offset > lowest)
		{
			int32		lo = Max(key - Max(SKETCH_SLACK, s->nbins), lowest);

			store_reframe(ctx, s, lo,
						  Min(s->offset + s->nbins - 1, lo + SKETCH_MAX_BINS - 1));
		}
		key = Max(key, s->offset);
	}
	else if (key >= s->offset + s->nbins)
	{
		int32		hi = key + Max(SKETCH_SLACK, s->nbins);

		if (hi - s->offset + 1 > SKETCH_MAX_BINS)
			hi = Max(key, s->offset + SKETCH_MAX_BINS - 1);
		store_reframe(ctx, s, Max(s->offset, hi - SKETCH_MAX_BINS + 1), hi);
	}
	s->counts[key - s->offset] += n;
}

static inline void
store_add(MemoryContext ctx, SketchStore *s, int32 key, uint64 n)
{
	uint32		i = (uint32) (key - s->offset);

	if (likely(i < (uint32) s->nbins))
		s->counts[i] += n;
	else
		store_add_outside(ctx, s, key, n);
}

/*
 * The canonical buckets of a store: keys more than SKETCH_MAX_BINS - 1 below
 * the highest key go to the lowest key kept, whatever order the values came
 * in, so that equal inputs give equal sketches.  Writes them to out (when
 * not NULL) and returns how many there are.
 */
static int32
store_flatten(const SketchStore *s, SketchBin *out)
{
	int32		lowest;
	uint64		collapsed = 0;
	int32		n = 0;
	int32		i;

	if (s->nbins == 0)
		return 0;
	lowest = store_top(s) - SKETCH_MAX_BINS + 1;
	for (i = 0; i < s->nbins; i++)
	{
		int32		key = s->offset + i;

		if (s->counts[i] == 0 && !(key == lowest && collapsed > 0))
			continue;
		if (key < lowest)
		{
			collapsed += s->counts[i];
			continue;
		}
		if (out)
		{
			out[n].key = key;
			out[n].pad = 0;
			out[n].count = s->counts[i] + (key == lowest ? collapsed : 0);
		}
		n++;
	}
	return n;
}

/*---- states ----*/

SketchState *
sketch_state_create(MemoryContext ctx)
{
	SketchState *state = MemoryContextAllocZero(ctx, sizeof(SketchState));

	state->ctx = ctx;
	return state;
}

static void
state_note_range(SketchState *state, double min, double max, uint64 count)
{
	if (state->count == 0)
	{
		state->min = min;
		state->max = max;
	}
	else
	{
		state->min = Min(state->min, min);
		state->max = Max(state->max, max);
	}
	state->count += count;
}

void
sketch_state_add_value(SketchState *state, double value)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sketch values must be finite"),
				 errdetail("The value was %s.", float8out_internal(value))));

	state_note_range(state, value, value, 1);
	if (value > 0)
		store_add(state->ctx, &state->pos, sketch_key(value), 1);
	else if (value < 0)
		store_add(state->ctx, &state->neg, sketch_key(-value), 1);
	else
		state->zero++;
}

void
sketch_state_add_sketch(SketchState *state, const Sketch *sketch)
{
	int32		i;

	if (sketch->count == 0)
		return;
	state_note_range(state, sketch->min, sketch->max, sketch->count);
	state->zero += sketch->zero;
	/* highest key first: the span is set once, then filled */
	for (i = sketch->npos - 1; i >= 0; i--)
		store_add(state->ctx, &state->pos, sketch->bins[i].key, sketch->bins[i].count);
	for (i = sketch->npos + sketch->nneg - 1; i >= sketch->npos; i--)
		store_add(state->ctx, &state->neg, sketch->bins[i].key, sketch->bins[i].count);
}

static void
state_add_store(SketchState *state, SketchStore *into, const SketchStore *from)
{
	int32		i;

	/* highest key first: the span is set once, then filled */
	for (i = from->nbins - 1; i >= 0; i--)
		if (from->counts[i] != 0)
			store_add(state->ctx, into, from->offset + i, from->counts[i]);
}

void
sketch_state_add_state(SketchState *state, const SketchState *other)
{
	if (other->count == 0)
		return;
	state_note_range(state, other->min, other->max, other->count);
	state->zero += other->zero;
	state_add_store(state, &state->pos, &other->pos);
	state_add_store(state, &state->neg, &other->neg);
}

Sketch *
sketch_state_flatten(const SketchState *state)
{
	int32		npos = store_flatten(&state->pos, NULL);
	int32		nneg = store_flatten(&state->neg, NULL);
	Size		size = SKETCH_SIZE(npos + nneg);
	Sketch	   *sketch = palloc0(size);

	SET_VARSIZE(sketch, size);
	sketch->version = SKETCH_VERSION;
	sketch->npos = npos;
	sketch->nneg = nneg;
	sketch->count = state->count;
	sketch->zero = state->zero;
	sketch->min = state->count > 0 ? state->min : 0.0;
	sketch->max = state->count > 0 ? state->max : 0.0;
	store_flatten(&state->pos, sketch->bins);
	store_flatten(&state->neg, sketch->bins + npos);
	return sketch;
}

/*
 * Reject anything sketch_state_flatten could not have produced, so that a
 * sketch read from text or binary input is safe to merge and query.
 */
void
sketch_validate(const Sketch *sketch)
{
	const char *problem = NULL;
	uint64		total = sketch->zero;
	int32		i;

	if (sketch->version != SKETCH_VERSION || sketch->flags != 0)
		problem = "Unknown sketch format version.";
	else if (sketch->npos < 0 || sketch->npos > SKETCH_MAX_BINS ||
			 sketch->nneg < 0 || sketch->nneg > SKETCH_MAX_BINS ||
			 VARSIZE(sketch) != SKETCH_SIZE(sketch->npos + sketch->nneg))
		problem = "The number of buckets does not match the size.";
	else if (isnan(sketch->min) || isinf(sketch->min) ||
			 isnan(sketch->max) || isinf(sketch->max) || sketch->min > sketch->max)
		problem = "min and max must be finite and in order.";

	for (i = 0; problem == NULL && i < sketch->npos + sketch->nneg; i++)
	{
		const SketchBin *b = &sketch->bins[i];
		bool		first = (i == 0 || i == sketch->npos);
		const SketchBin *lowest = &sketch->bins[i < sketch->npos ? 0 : sketch->npos];

		if (b->key <= -SKETCH_KEY_LIMIT || b->key >= SKETCH_KEY_LIMIT)
			problem = "A bucket key is out of range.";
		else if (!first && b->key <= (b - 1)->key)
			problem = "Bucket keys must be strictly ascending.";
		else if (b->key - lowest->key >= SKETCH_MAX_BINS)
			problem = "The buckets span too many keys.";
		else if (b->count == 0 || total + b->count < total)
			problem = "Bucket counts must be positive and their sum must fit in 64 bits.";
		total += b->count;
	}
	if (problem == NULL && total != sketch->count)
		problem = "count must equal zero plus the bucket counts.";
	if (problem == NULL && sketch->count > 0 &&
		((sketch->npos > 0 && sketch->max <= 0) ||
		 (sketch->nneg > 0 && sketch->min >= 0) ||
		 (sketch->zero > 0 && (sketch->min > 0 || sketch->max < 0))))
		problem = "min and max do not agree with the buckets.";
	if (problem == NULL && sketch->count == 0 && (sketch->min != 0 || sketch->max != 0))
		problem = "An empty sketch has min and max 0.";
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid sketch"),
				 errdetail_internal("%s", problem)));
}

/*---- quantile ----*/

double
sketch_quantile(const Sketch *sketch, double q)
{
	uint64		rank;
	uint64		seen = 0;
	double		value = sketch->max;
	int32		i;

	rank = (uint64) ceil(q * (double) sketch->count);
	if (rank <= 1)
		return sketch->min;
	if (rank >= sketch->count)
		return sketch->max;

	/* most negative first: negative buckets by descending magnitude */
	for (i = sketch->npos + sketch->nneg - 1; i >= sketch->npos; i--)
	{
		seen += sketch->bins[i].count;
		if (seen >= rank)
		{
			value = -sketch_key_value(sketch->bins[i].key);
			goto found;
		}
	}
	seen += sketch->zero;
	if (seen >= rank)
		return 0.0;
	for (i = 0; i < sketch->npos; i++)
	{
		seen += sketch->bins[i].count;
		if (seen >= rank)
		{
			value = sketch_key_value(sketch->bins[i].key);
			break;
		}
	}
found:
	return Max(sketch->min, Min(sketch->max, value));
}

PG_FUNCTION_INFO_V1(synchub_sketch_quantile);
Datum
synchub_sketch_quantile(PG_FUNCTION_ARGS)
{
	Sketch	   *sketch = PG_GETARG_SKETCH_P(0);
	double		q = PG_GETARG_FLOAT8(1);

	if (isnan(q) || q < 0.0 || q > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantile must be between 0 and 1"),
				 errdetail("The value was %s.", float8out_internal(q))));
	if (sketch->count == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(sketch_quantile(sketch, q));
}

PG_FUNCTION_INFO_V1(synchub_sketch_count);
Datum
synchub_sketch_count(PG_FUNCTION_ARGS)
{
	Sketch	   *sketch = PG_GETARG_SKETCH_P(0);

	if (sketch->count > (uint64) PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("sketch count is out of range for type bigint")));
	PG_RETURN_INT64((int64) sketch->count);
}

/*---- union of two sketches ----*/

PG_FUNCTION_INFO_V1(synchub_sketch_union);
Datum
synchub_sketch_union(PG_FUNCTION_ARGS)
{
	SketchState *state;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(0))
		PG_RETURN_DATUM(PG_GETARG_DATUM(1));
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	state = sketch_state_create(CurrentMemoryContext);
	sketch_state_add_sketch(state, PG_GETARG_SKETCH_P(0));
	sketch_state_add_sketch(state, PG_GETARG_SKETCH_P(1));
	PG_RETURN_POINTER(sketch_state_flatten(state));
}

/*---- aggregates ----*/

/* A state exists only inside an aggregate: SQL cannot make an internal. */
static SketchState *
agg_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggctx;

	if (!PG_ARGISNULL(0))
		return (SketchState *) PG_GETARG_POINTER(0);
	if (!AggCheckCallContext(fcinfo, &aggctx))
		elog(ERROR, "sketch aggregate function called in non-aggregate context");
	return sketch_state_create(aggctx);
}

PG_FUNCTION_INFO_V1(synchub_sketch_add);
Datum
synchub_sketch_add(PG_FUNCTION_ARGS)
{
	SketchState *state;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	state = agg_state(fcinfo);
	sketch_state_add_value(state, PG_GETARG_FLOAT8(1));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(synchub_sketch_merge_add);
Datum
synchub_sketch_merge_add(PG_FUNCTION_ARGS)
{
	SketchState *state;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	state = agg_state(fcinfo);
	sketch_state_add_sketch(state, PG_GETARG_SKETCH_P(1));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(synchub_sketch_combine);
Datum
synchub_sketch_combine(PG_FUNCTION_ARGS)
{
	SketchState *state;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	/* a NULL first state gets a fresh one in the aggregate context */
	state = agg_state(fcinfo);
	sketch_state_add_state(state, (SketchState *) PG_GETARG_POINTER(1));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(synchub_sketch_final);
Datum
synchub_sketch_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_POINTER(sketch_state_flatten((SketchState *) PG_GETARG_POINTER(0)));
}

/* The serialised state is the Sketch varlena itself, passed as bytea. */
PG_FUNCTION_INFO_V1(synchub_sketch_serialize);
Datum
synchub_sketch_serialize(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(sketch_state_flatten((SketchState *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(synchub_sketch_deserialize);
Datum
synchub_sketch_deserialize(PG_FUNCTION_ARGS)
{
	SketchState *state = sketch_state_create(CurrentMemoryContext);

	sketch_state_add_sketch(state, PG_GETARG_SKETCH_P(0));
	PG_RETURN_POINTER(state);
}
