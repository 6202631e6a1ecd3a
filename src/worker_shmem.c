/*-------------------------------------------------------------------------
 * worker_shmem.c
 *    Shared memory of the launcher and the workers: one slot per running
 *    worker (database, pid, latch), the databases whose worker is held
 *    back, and the launcher's latch.
 *
 * With shared_preload_libraries the space is requested at start-up
 * (shmem_request_hook on PostgreSQL 15+, RequestAddinShmemSpace before).
 * Without it the first backend that needs the state takes it from the
 * small reserve PostgreSQL keeps for late allocations; the struct is a few
 * kilobytes.  A spinlock guards it: every critical section is a handful of
 * assignments.  Curl handles and everything else that belongs to one
 * process never live here.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "compat.h"
#include "worker_shmem.h"

int			synchub_max_workers = 8;

static SynchubWorkerShared *shared = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static Size
shmem_size(void)
{
	return add_size(offsetof(SynchubWorkerShared, slots),
					mul_size(synchub_max_workers, sizeof(SynchubWorkerSlot)));
}

#if PG_VERSION_NUM >= 150000
static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shmem_size());
}
#endif

/* Called from _PG_init: reserve the space when preloaded. */
void
synchub_shmem_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
#else
	RequestAddinShmemSpace(shmem_size());
#endif
}

/* The shared struct, attached (and initialized by the first comer). */
SynchubWorkerShared *
synchub_shmem(void)
{
	bool		found;

	if (shared)
		return shared;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("synchub worker state", shmem_size(), &found);
	if (!found)
	{
		memset(shared, 0, shmem_size());
		SpinLockInit(&shared->mutex);
		shared->nslots = synchub_max_workers;
	}
	LWLockRelease(AddinShmemInitLock);
	return shared;
}

/* A free slot for dboid, or -1 when all are taken or dboid has one. */
int
synchub_shmem_alloc_slot(Oid dboid, bool by_launcher)
{
	SynchubWorkerShared *s = synchub_shmem();
	int			found = -1;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < s->nslots; i++)
	{
		if (s->slots[i].in_use && s->slots[i].dboid == dboid)
		{
			found = -1;
			break;
		}
		if (!s->slots[i].in_use && found < 0)
			found = i;
	}
	if (found >= 0)
	{
		SynchubWorkerSlot *slot = &s->slots[found];

		memset(slot, 0, sizeof(*slot));
		slot->in_use = true;
		slot->by_launcher = by_launcher;
		slot->dboid = dboid;
		slot->generation = ++s->next_generation;
	}
	SpinLockRelease(&s->mutex);
	return found;
}

void
synchub_shmem_free_slot(int slot)
{
	SynchubWorkerShared *s = synchub_shmem();

	SpinLockAcquire(&s->mutex);
	memset(&s->slots[slot], 0, sizeof(SynchubWorkerSlot));
	SpinLockRelease(&s->mutex);
}

int
synchub_shmem_find_slot(Oid dboid)
{
	SynchubWorkerShared *s = synchub_shmem();
	int			found = -1;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].in_use && s->slots[i].dboid == dboid)
			found = i;
	SpinLockRelease(&s->mutex);
	return found;
}

/* Keep dboid's worker from being started before until (0 clears). */
void
synchub_shmem_hold(Oid dboid, TimestampTz until)
{
	SynchubWorkerShared *s = synchub_shmem();
	int			pos = -1;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < SYNCHUB_MAX_HOLDS; i++)
	{
		if (s->holds[i].dboid == dboid)
		{
			pos = i;
			break;
		}
		if (pos < 0 && (s->holds[i].dboid == InvalidOid || until == 0))
			pos = i;
	}
	if (pos < 0)				/* full: replace the one that ends first */
	{
		pos = 0;
		for (int i = 1; i < SYNCHUB_MAX_HOLDS; i++)
			if (s->holds[i].until < s->holds[pos].until)
				pos = i;
	}
	if (until == 0)
	{
		if (s->holds[pos].dboid == dboid)
			s->holds[pos].dboid = InvalidOid;
	}
	else
	{
		s->holds[pos].dboid = dboid;
		s->holds[pos].until = until;
	}
	SpinLockRelease(&s->mutex);
}

bool
synchub_shmem_held(Oid dboid, TimestampTz now)
{
	SynchubWorkerShared *s = synchub_shmem();
	bool		held = false;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < SYNCHUB_MAX_HOLDS; i++)
		if (s->holds[i].dboid == dboid && s->holds[i].until > now)
			held = true;
	SpinLockRelease(&s->mutex);
	return held;
}

void
synchub_shmem_wake_launcher(bool rescan)
{
	SynchubWorkerShared *s = synchub_shmem();
	Latch	   *latch;

	SpinLockAcquire(&s->mutex);
	if (rescan)
		s->rescan = true;
	latch = s->launcher_latch;
	SpinLockRelease(&s->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * Ask dboid's worker to leave and hold it back until hold_until.  Returns
 * the pid signalled, or 0 when the database had no running worker.
 */
pid_t
synchub_shmem_stop_worker(Oid dboid, TimestampTz hold_until)
{
	SynchubWorkerShared *s = synchub_shmem();
	pid_t		pid = 0;

	synchub_shmem_hold(dboid, hold_until);
	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < s->nslots; i++)
	{
		if (s->slots[i].in_use && s->slots[i].dboid == dboid)
		{
			s->slots[i].stop_requested = true;
			pid = s->slots[i].pid;
		}
	}
	SpinLockRelease(&s->mutex);
	if (pid > 0)
		kill(pid, SIGTERM);
	return pid;
}

/* Set the latch of dboid's worker; false when it has none. */
bool
synchub_shmem_wake_worker(Oid dboid)
{
	SynchubWorkerShared *s = synchub_shmem();
	Latch	   *latch = NULL;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].in_use && s->slots[i].dboid == dboid)
			latch = s->slots[i].latch;
	SpinLockRelease(&s->mutex);
	if (latch)
		SetLatch(latch);
	return latch != NULL;
}
