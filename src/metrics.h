/*-------------------------------------------------------------------------
 * metrics.h
 *    Shared pieces of the metrics module: the rollup setting and the
 *    64-bit mixing function used by the funnel aggregate and the distinct
 *    sketch.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_METRICS_H
#define SYNCHUB_METRICS_H

#include "postgres.h"

/* ---- GUC variables (defined in metrics.c) ---- */
extern int	synchub_rollup_interval;	/* seconds */

extern void metrics_define_settings(void);

/*
 * The 64-bit finaliser of MurmurHash3: a bijection on 64-bit integers with
 * full avalanche, so distinct lead ids give distinct, well spread hashes.
 */
static inline uint64
metrics_hash64(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

#endif							/* SYNCHUB_METRICS_H */
