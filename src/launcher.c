/*-------------------------------------------------------------------------
 * launcher.c
 *    The launcher: a background worker connected to no database that keeps
 *    one synchub worker running per database where the extension exists.
 *
 * Each tick it reads pg_database and starts a worker for every database
 * that allows connections and has none.  The worker itself checks
 * pg_extension and leaves at once (marking its slot "absent") when the
 * extension is missing; such a database is probed again after
 * PROBE_INTERVAL, or at once when CREATE EXTENSION synchub commits (the
 * install script wakes the launcher with a rescan request).  A worker that
 * stops for any other reason is restarted after RESTART_DELAY unless its
 * database is held (stop_worker(), DROP DATABASE and the like).  The
 * launcher learns of a worker's exit through bgw_notify_pid.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "launcher.h"
#include "worker_shmem.h"

#define PROBE_INTERVAL_MS	60000
#define RESTART_DELAY_MS	1000
#define TICK_MS				1000

typedef struct DbEntry
{
	Oid			dboid;			/* hash key */
	TimestampTz next_start;
} DbEntry;

PGDLLEXPORT void synchub_launcher_main(Datum arg);

static HTAB *dbs = NULL;
static BackgroundWorkerHandle **handles = NULL;	/* per slot */

void
synchub_launcher_init(void)
{
	BackgroundWorker bgw;

	if (!process_shared_preload_libraries_in_progress)
		return;
	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "synchub");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "synchub_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "synchub launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "synchub launcher");
	RegisterBackgroundWorker(&bgw);
}

/*
 * Register a dynamic worker for dboid in the given slot.  NULL when the
 * postmaster has no free background worker slot.
 */
BackgroundWorkerHandle *
synchub_launcher_start_worker(Oid dboid, int slot, bool notify_me)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "synchub");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "synchub_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "synchub worker for database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "synchub worker");
	bgw.bgw_main_arg = Int32GetDatum(slot);
	memcpy(bgw.bgw_extra, &dboid, sizeof(Oid));
	bgw.bgw_notify_pid = notify_me ? MyProcPid : 0;
	if (!RegisterDynamicBackgroundWorker(&bgw, &handle))
		return NULL;
	return handle;
}

/* Collect exited workers: free their slots and schedule the next start. */
static void
reap_workers(TimestampTz now)
{
	SynchubWorkerShared *s = synchub_shmem();

	for (int i = 0; i < s->nslots; i++)
	{
		pid_t		pid;
		DbEntry    *db;
		bool		found;
		Oid			dboid;
		bool		absent;

		if (handles[i] == NULL ||
			GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		SpinLockAcquire(&s->mutex);
		dboid = s->slots[i].dboid;
		absent = s->slots[i].absent;
		SpinLockRelease(&s->mutex);
		pfree(handles[i]);
		handles[i] = NULL;
		synchub_shmem_free_slot(i);
		db = hash_search(dbs, &dboid, HASH_ENTER, &found);
		db->next_start = TimestampTzPlusMilliseconds(now, absent ? PROBE_INTERVAL_MS : RESTART_DELAY_MS);
	}
}

/* Start a worker for every connectable database that is due. */
static void
scan_databases(TimestampTz now, bool rescan)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *due = NIL;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database d = (Form_pg_database) GETSTRUCT(tup);
		DbEntry    *db;
		bool		found;
		MemoryContext old;

		if (!d->datallowconn || d->datistemplate)
			continue;
		db = hash_search(dbs, &d->oid, HASH_ENTER, &found);
		if (!found || rescan)
			db->next_start = 0;
		if (db->next_start > now)
			continue;
		old = MemoryContextSwitchTo(cxt);
		due = lappend_oid(due, d->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, due)
	{
		Oid			dboid = lfirst_oid(lc);
		int			slot;

		if (synchub_shmem_held(dboid, now) || synchub_shmem_find_slot(dboid) >= 0)
			continue;
		slot = synchub_shmem_alloc_slot(dboid, true);
		if (slot < 0)
		{
			ereport(LOG,
					(errmsg("synchub launcher: no free worker slot for database %u", dboid),
					 errhint("Raise synchub.max_workers.")));
			break;
		}
		handles[slot] = synchub_launcher_start_worker(dboid, slot, true);
		if (handles[slot] == NULL)
		{
			synchub_shmem_free_slot(slot);
			ereport(LOG,
					(errmsg("synchub launcher: could not register a worker for database %u", dboid),
					 errhint("Raise max_worker_processes.")));
			break;
		}
	}
	list_free(due);
}

static void
launcher_detach(int code, Datum arg)
{
	SynchubWorkerShared *s = synchub_shmem();

	SpinLockAcquire(&s->mutex);
	s->launcher_pid = 0;
	s->launcher_latch = NULL;
	SpinLockRelease(&s->mutex);
}

void
synchub_launcher_main(Datum arg)
{
	SynchubWorkerShared *s;
	HASHCTL		ctl;
	MemoryContext tick_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	s = synchub_shmem();
	SpinLockAcquire(&s->mutex);
	s->launcher_pid = MyProcPid;
	s->launcher_latch = MyLatch;
	s->rescan = true;
	SpinLockRelease(&s->mutex);
	before_shmem_exit(launcher_detach, 0);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DbEntry);
	dbs = hash_create("synchub launcher databases", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * s->nslots);
	tick_cxt = AllocSetContextCreate(TopMemoryContext, "synchub launcher tick",
									 ALLOCSET_DEFAULT_SIZES);
	pgstat_report_activity(STATE_IDLE, "synchub launcher");

	for (;;)
	{
		TimestampTz now;
		bool		rescan;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		SpinLockAcquire(&s->mutex);
		rescan = s->rescan;
		s->rescan = false;
		SpinLockRelease(&s->mutex);

		now = GetCurrentTimestamp();
		old = MemoryContextSwitchTo(tick_cxt);
		reap_workers(now);
		scan_databases(now, rescan);
		MemoryContextSwitchTo(old);
		MemoryContextReset(tick_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TICK_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
