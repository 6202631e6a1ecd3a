/*-------------------------------------------------------------------------
 * worker_control.c
 *    Starting, stopping and waking workers: synchub.start_worker(),
 *    synchub.stop_worker(), wake-on-commit, and the utility hook that gets
 *    a worker out of a database that DROP DATABASE (or RENAME, SET
 *    TABLESPACE, use as a template) needs to itself.
 *
 * Wake on commit: synchub._wake_worker(queue) is called by the queue
 * functions wherever a job becomes claimable; for queue "synchub" it notes
 * that the database's worker must be woken, and the transaction callback
 * sets the worker's latch once the transaction commits (not before: the
 * worker would find nothing).  CREATE EXTENSION likewise wakes the
 * launcher at commit so the new database gets its worker at once.
 *
 * The utility hook asks the database's worker to leave (SIGTERM) and holds
 * it back for HOLD_MS, so the statement, which waits up to five seconds
 * for other sessions to leave, finds the database free.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "launcher.h"
#include "worker_control.h"
#include "worker_shmem.h"

#define HOLD_MS		10000
#define WAIT_MS		10000

static bool wake_on_commit = false;
static bool rescan_on_commit = false;
static ProcessUtility_hook_type prev_utility_hook = NULL;

/* Wait until dboid's worker is gone (or running, if running is true). */
static bool
wait_for_worker(Oid dboid, bool running)
{
	SynchubWorkerShared *s = synchub_shmem();

	for (int waited = 0; waited < WAIT_MS; waited += 10)
	{
		int			slot = synchub_shmem_find_slot(dboid);
		pid_t		pid = 0;

		if (slot >= 0)
		{
			SpinLockAcquire(&s->mutex);
			pid = s->slots[slot].pid;
			SpinLockRelease(&s->mutex);
		}
		if (running ? pid != 0 : pid == 0)
			return true;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
	return false;
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_on_commit)
				synchub_shmem_wake_worker(MyDatabaseId);
			if (rescan_on_commit)
				synchub_shmem_wake_launcher(true);
			wake_on_commit = rescan_on_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_on_commit = rescan_on_commit = false;
			break;
		default:
			break;
	}
}

/* The database a utility statement needs without other sessions, if any. */
static char *
database_needed_alone(Node *tree)
{
	ListCell   *lc;

	switch (nodeTag(tree))
	{
		case T_DropdbStmt:
			return ((DropdbStmt *) tree)->dbname;
		case T_RenameStmt:
			if (((RenameStmt *) tree)->renameType == OBJECT_DATABASE)
				return ((RenameStmt *) tree)->subname;
			break;
		case T_AlterDatabaseStmt:
			foreach(lc, ((AlterDatabaseStmt *) tree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "tablespace") == 0)
					return ((AlterDatabaseStmt *) tree)->dbname;
			break;
		case T_CreatedbStmt:
			foreach(lc, ((CreatedbStmt *) tree)->options)
				if (strcmp(((DefElem *) lfirst(lc))->defname, "template") == 0)
					return defGetString((DefElem *) lfirst(lc));
			break;
		default:
			break;
	}
	return NULL;
}

static void
utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	char	   *dbname = database_needed_alone(pstmt->utilityStmt);

	/*
	 * Only for a statement that can go on: run by the database's owner (or a
	 * superuser), and, except RENAME, outside a transaction block, which
	 * those statements refuse.  Anyone else's attempt fails later without
	 * having stopped the worker.
	 */
	if (dbname && (IsA(pstmt->utilityStmt, RenameStmt) || !IsTransactionBlock()))
	{
		Oid			dboid = get_database_oid(dbname, true);

		if (OidIsValid(dboid) && dboid != MyDatabaseId &&
			synchub_database_ownercheck(dboid, GetUserId()) &&
			synchub_shmem_stop_worker(dboid, TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HOLD_MS)) > 0)
			(void) wait_for_worker(dboid, false);
	}
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
synchub_worker_control_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
}

/* Wake this database's worker when the transaction commits, if the queue is its. */
void
worker_wake_on_commit(const char *queue)
{
	if (strcmp(queue, "synchub") == 0)
		wake_on_commit = true;
}

PG_FUNCTION_INFO_V1(synchub_wake_worker);
Datum
synchub_wake_worker(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		worker_wake_on_commit(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(synchub_extension_created);
Datum
synchub_extension_created(PG_FUNCTION_ARGS)
{
	rescan_on_commit = true;
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(synchub_start_worker);
Datum
synchub_start_worker(PG_FUNCTION_ARGS)
{
	SynchubWorkerShared *s = synchub_shmem();
	bool		launcher;
	int			slot;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	synchub_shmem_hold(MyDatabaseId, 0);
	if (synchub_shmem_find_slot(MyDatabaseId) >= 0)
		PG_RETURN_BOOL(false);
	SpinLockAcquire(&s->mutex);
	launcher = s->launcher_latch != NULL;
	SpinLockRelease(&s->mutex);
	if (launcher)
	{
		synchub_shmem_wake_launcher(true);
		if (!wait_for_worker(MyDatabaseId, true))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the synchub launcher did not start a worker for database \"%s\"",
							get_database_name(MyDatabaseId)),
					 errhint("See the server log; raise synchub.max_workers or max_worker_processes.")));
		PG_RETURN_BOOL(true);
	}
	slot = synchub_shmem_alloc_slot(MyDatabaseId, false);
	if (slot < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free synchub worker slot"),
				 errhint("Raise synchub.max_workers.")));
	handle = synchub_launcher_start_worker(MyDatabaseId, slot, true);
	if (handle == NULL || WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
	{
		synchub_shmem_free_slot(slot);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a synchub worker"),
				 errhint("Raise max_worker_processes.")));
	}
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(synchub_stop_worker);
Datum
synchub_stop_worker(PG_FUNCTION_ARGS)
{
	if (synchub_shmem_stop_worker(MyDatabaseId, PG_INT64_MAX) == 0)
		PG_RETURN_BOOL(false);
	if (!wait_for_worker(MyDatabaseId, false))
		ereport(WARNING,
				(errmsg("the synchub worker of database \"%s\" did not stop within %d seconds",
						get_database_name(MyDatabaseId), WAIT_MS / 1000)));
	PG_RETURN_BOOL(true);
}
