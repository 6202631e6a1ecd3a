/*-------------------------------------------------------------------------
 * hll.h
 *    The distinct sketch of the rollups (exact up to 2048 values,
 *    HyperLogLog above), for code that merges stored sketches.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_HLL_H
#define SYNCHUB_HLL_H

#include "postgres.h"

typedef struct HllState HllState;

extern HllState *hll_state_create(MemoryContext ctx);
extern void hll_state_add_stored(HllState *state, bytea *data);
extern int64 hll_state_count(HllState *state);

#endif							/* SYNCHUB_HLL_H */
