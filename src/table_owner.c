/*-------------------------------------------------------------------------
 * table_owner.c
 *    The worker writes an integration's target table as that table's owner,
 *    in a security-restricted operation, the way PostgreSQL runs REFRESH
 *    MATERIALIZED VIEW: the table's triggers, defaults and domain checks run
 *    with its owner's rights, never with the worker's (the extension owner,
 *    a superuser), and cannot change role or leave settings behind.
 *
 * An ERROR in between needs no cleanup here: the (sub)transaction abort
 * restores the user and the settings.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"

#include "table_owner.h"

void
synchub_become_table_owner(Oid relid, SynchubUserSave *save)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	save->owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	GetUserIdAndSecContext(&save->user, &save->sec_context);
	synchub_as_table_owner_again(save);
	save->guc_nest = NewGUCNestLevel();
	/* the table's code sees PostgreSQL's default path, not the worker's */
	(void) set_config_option("search_path", "\"$user\", public", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Between synchub_become_table_owner and synchub_restore_user: back to the
 * caller for a write of its own (a reject), then to the owner again.
 */
void
synchub_as_caller(const SynchubUserSave *save)
{
	SetUserIdAndSecContext(save->user, save->sec_context);
}

void
synchub_as_table_owner_again(const SynchubUserSave *save)
{
	SetUserIdAndSecContext(save->owner, save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
synchub_restore_user(const SynchubUserSave *save)
{
	/* settings the restricted code changed do not outlive it */
	AtEOXact_GUC(false, save->guc_nest);
	synchub_as_caller(save);
}

/* Run sql with $1 jsonb, $2 text as target's owner; SPI's result is left. */
static uint64
run_as_owner(FunctionCallInfo fcinfo, bool read_only)
{
	Oid			types[2] = {JSONBOID, TEXTOID};
	Datum		values[2];
	char		nulls[2];
	SynchubUserSave save;
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("target and sql must not be null")));
	values[0] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	values[1] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[0] = PG_ARGISNULL(2) ? 'n' : ' ';
	nulls[1] = PG_ARGISNULL(3) ? 'n' : ' ';

	synchub_become_table_owner(PG_GETARG_OID(0), &save);
	rc = SPI_execute_with_args(text_to_cstring(PG_GETARG_TEXT_PP(1)), 2, types, values, nulls,
							   read_only, read_only ? 1 : 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	synchub_restore_user(&save);
	return SPI_processed;
}

PG_FUNCTION_INFO_V1(synchub_read_as_table_owner);

/*
 * synchub._read_as_table_owner(target regclass, sql text, p1 jsonb, p2 text)
 *   the first column (jsonb) of the first row of a query of target, run as
 *   target's owner; NULL without a row.
 */
Datum
synchub_read_as_table_owner(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	Datum		result = (Datum) 0;
	bool		isnull = true;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (run_as_owner(fcinfo, true) > 0)
	{
		if (SPI_tuptable->tupdesc->natts < 1 ||
			SPI_gettypeid(SPI_tuptable->tupdesc, 1) != JSONBOID)
			elog(ERROR, "_read_as_table_owner needs a query whose first column is jsonb");
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(caller);

			result = PointerGetDatum(DatumGetJsonbPCopy(result));
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(synchub_exec_as_table_owner);

/*
 * synchub._exec_as_table_owner(target regclass, sql text, p1 jsonb, p2 text)
 *   runs sql (a write of target, with parameters $1 jsonb and $2 text) as
 *   target's owner; returns the number of rows it processed.
 */
Datum
synchub_exec_as_table_owner(PG_FUNCTION_ARGS)
{
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	n = run_as_owner(fcinfo, false);
	SPI_finish();
	PG_RETURN_INT64((int64) n);
}
