/*-------------------------------------------------------------------------
 * ratelimit.h
 *    Rate limits (several windows per key), server-announced throttling
 *    and circuit breakers, shared by the workers.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_RATELIMIT_H
#define SYNCHUB_RATELIMIT_H

#include "postgres.h"

#include "utils/timestamp.h"

/* What one response (or failure) says about its key. */
typedef enum SynchubRateEvent
{
	SYNCHUB_RATE_SUCCESS,		/* the server answered (2xx, 4xx) */
	SYNCHUB_RATE_FAILURE,		/* 5xx, timeout, connection error */
	SYNCHUB_RATE_NEUTRAL		/* 429 and the like: says nothing of health */
} SynchubRateEvent;

extern int	synchub_circuit_failures;
extern int	synchub_circuit_cooldown;	/* ms */

extern void synchub_ratelimit_init(void);
extern void synchub_ratelimit_configure(const char *key, int nwindows,
										const int *limits, const int *per_ms);
extern void synchub_ratelimit_configure_done(void);
extern List *synchub_ratelimit_blocked_keys(TimestampTz now);
extern bool synchub_ratelimit_acquire(const char *key, TimestampTz now, long *wait_ms);
extern void synchub_ratelimit_restamp(const char *key, TimestampTz taken, TimestampTz now);
extern void synchub_ratelimit_observe(const char *key, SynchubRateEvent event,
									  TimestampTz blocked_until, TimestampTz now);

#endif							/* SYNCHUB_RATELIMIT_H */
