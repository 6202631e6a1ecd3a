/*-------------------------------------------------------------------------
 * worker_control.h
 *    Starting, stopping and waking workers from SQL and from hooks.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_WORKER_CONTROL_H
#define SYNCHUB_WORKER_CONTROL_H

#include "postgres.h"

extern void synchub_worker_control_init(void);

/* Wake this database's worker at commit when queue is "synchub". */
extern void worker_wake_on_commit(const char *queue);

#endif							/* SYNCHUB_WORKER_CONTROL_H */
