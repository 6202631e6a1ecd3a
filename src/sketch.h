/*-------------------------------------------------------------------------
 * sketch.h
 *    synchub.sketch: a mergeable quantile sketch (DDSketch) with relative
 *    error at most 1%.
 *
 * Two forms of one sketch:
 *  - Sketch, the varlena stored in tables: a header and the non-empty
 *    buckets in key order, positive store first, then negative store.
 *  - SketchState, the in-memory form while aggregating: per sign a dense
 *    array of counts over the span of keys seen, so adding a value is one
 *    logarithm and one increment.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_SKETCH_H
#define SYNCHUB_SKETCH_H

#include "postgres.h"

#include "fmgr.h"

#define SKETCH_KEYS_PER_OCTAVE 36	/* gamma = 2^(1/36): relative error 0.963% */
#define SKETCH_MAX_BINS 2048	/* per sign; lower keys collapse into the lowest */
#define SKETCH_VERSION	1

typedef struct SketchBin
{
	int32		key;
	uint32		pad;
	uint64		count;
} SketchBin;

typedef struct Sketch
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint16		version;
	uint16		flags;			/* none yet */
	int32		npos;			/* buckets of positive values */
	int32		nneg;			/* buckets of negative values (by magnitude) */
	int32		pad;
	uint64		count;			/* every value, zeros included */
	uint64		zero;			/* values equal to zero */
	double		min;
	double		max;
	SketchBin	bins[FLEXIBLE_ARRAY_MEMBER];	/* npos, then nneg, keys ascending */
} Sketch;

#define SKETCH_SIZE(nbins) (offsetof(Sketch, bins) + sizeof(SketchBin) * (nbins))

typedef struct SketchStore
{
	int32		offset;			/* key of counts[0] */
	int32		nbins;			/* span in use */
	int32		capacity;
	uint64	   *counts;
} SketchStore;

typedef struct SketchState
{
	MemoryContext ctx;			/* where the stores grow */
	uint64		count;
	uint64		zero;
	double		min;
	double		max;
	SketchStore pos;
	SketchStore neg;
} SketchState;

extern SketchState *sketch_state_create(MemoryContext ctx);
extern void sketch_state_add_value(SketchState *state, double value);
extern void sketch_state_add_sketch(SketchState *state, const Sketch *sketch);
extern void sketch_state_add_state(SketchState *state, const SketchState *other);
extern Sketch *sketch_state_flatten(const SketchState *state);
extern void sketch_validate(const Sketch *sketch);
extern double sketch_quantile(const Sketch *sketch, double q);	/* count > 0 */

#define DatumGetSketchP(d) ((Sketch *) PG_DETOAST_DATUM(d))
#define PG_GETARG_SKETCH_P(n) DatumGetSketchP(PG_GETARG_DATUM(n))

#endif							/* SYNCHUB_SKETCH_H */
