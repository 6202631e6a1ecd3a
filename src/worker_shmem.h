/*-------------------------------------------------------------------------
 * worker_shmem.h
 *    Shared state of the launcher and the per-database workers.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_WORKER_SHMEM_H
#define SYNCHUB_WORKER_SHMEM_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#define SYNCHUB_MAX_HOLDS 32

/* One running (or starting) worker. */
typedef struct SynchubWorkerSlot
{
	bool		in_use;
	bool		by_launcher;	/* the launcher frees the slot, else the worker */
	bool		absent;			/* worker found no extension and left */
	bool		stop_requested;
	Oid			dboid;
	pid_t		pid;
	Latch	   *latch;
	uint32		generation;
} SynchubWorkerSlot;

/* A database whose worker must not be (re)started before "until". */
typedef struct SynchubHold
{
	Oid			dboid;
	TimestampTz until;
} SynchubHold;

typedef struct SynchubWorkerShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* re-probe every database */
	uint32		next_generation;
	SynchubHold holds[SYNCHUB_MAX_HOLDS];
	int			nslots;
	SynchubWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SynchubWorkerShared;

extern int	synchub_max_workers;

extern void synchub_shmem_init(void);
extern SynchubWorkerShared *synchub_shmem(void);
extern int	synchub_shmem_alloc_slot(Oid dboid, bool by_launcher);
extern void synchub_shmem_free_slot(int slot);
extern int	synchub_shmem_find_slot(Oid dboid);
extern void synchub_shmem_hold(Oid dboid, TimestampTz until);
extern bool synchub_shmem_held(Oid dboid, TimestampTz now);
extern void synchub_shmem_wake_launcher(bool rescan);
extern pid_t synchub_shmem_stop_worker(Oid dboid, TimestampTz hold_until);
extern bool synchub_shmem_wake_worker(Oid dboid);

#endif							/* SYNCHUB_WORKER_SHMEM_H */
