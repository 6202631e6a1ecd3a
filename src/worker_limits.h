/*-------------------------------------------------------------------------
 * worker_limits.h
 *    Loading the rate windows into the rate limiter (src/worker_limits.c).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_WORKER_LIMITS_H
#define SYNCHUB_WORKER_LIMITS_H

extern void worker_limits_load(void);
extern bool worker_limits_known(const char *key);

#endif							/* SYNCHUB_WORKER_LIMITS_H */
