/*-------------------------------------------------------------------------
 * launcher.h
 *    The launcher: one worker per database that has the extension.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_LAUNCHER_H
#define SYNCHUB_LAUNCHER_H

#include "postgres.h"

#include "postmaster/bgworker.h"

extern void synchub_launcher_init(void);
extern BackgroundWorkerHandle *synchub_launcher_start_worker(Oid dboid, int slot, bool notify_me);

#endif							/* SYNCHUB_LAUNCHER_H */
