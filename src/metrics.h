/*-------------------------------------------------------------------------
 * metrics.h
 *    Shared pieces of the metrics module: the rollup setting, jsonb
 *    building, the funnel's JSON keys, and the 64-bit mixing function used
 *    by the funnel aggregate and the distinct sketch.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_METRICS_H
#define SYNCHUB_METRICS_H

#include "postgres.h"

#include "utils/jsonb.h"

#define METRICS_KINDS 6			/* sent, delivered, opened, clicked, replied, bounced */

/* ---- GUC variables (defined in metrics.c) ---- */
extern int	synchub_rollup_interval;	/* seconds */

extern void metrics_define_settings(void);

/* jsonb building (metrics.c); values go into an open object or array */
extern void metrics_json_key(JsonbParseState **ps, const char *key);
extern void metrics_json_int(JsonbParseState **ps, int64 value);
extern void metrics_json_float(JsonbParseState **ps, double value, bool isnull);
extern void metrics_json_string(JsonbParseState **ps, const char *value);

/* the funnel keys of campaign_metrics (campaign_metrics.c) */
extern void funnel_push_kinds(JsonbParseState **ps, const char *key, const int64 *values);
extern void funnel_push_json(JsonbParseState **ps, const int64 *counts, const int64 *uniques);
extern const char *const funnel_kinds[METRICS_KINDS];

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
