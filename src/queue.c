/*-------------------------------------------------------------------------
 * queue.c
 *    The job queue's hot paths in C: claim, complete, complete_many.
 *
 * The rest of the queue is plpgsql (sql/install/10_queue.sql).  These three
 * run once or twice per job, so they use saved SPI plans, take the clock
 * once, and build NOTIFY payloads without a second function call; the
 * queue benchmark (bench/queue) measures them against a plain-SQL queue.
 *
 * Every statement is fully schema-qualified and runs as the caller, so
 * privileges and row-level security on the job tables apply.  The plan
 * cache re-plans on DDL, role or search_path change, so a plan saved in one
 * incarnation of the extension stays valid after DROP/CREATE EXTENSION.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "queue.h"
#include "synchub.h"

#define MAX_CLAIM 10000

/* Column numbers of synchub.job_queue / job_history / the jobs view. */
#define JOB_ID			1
#define JOB_QUEUE		2
#define JOB_KIND		3
#define JOB_INTEGRATION 4
#define JOB_STATE		7
#define JOB_ATTEMPTS	9
#define JOB_PROCESSED	13
#define JOB_TOTAL		14
#define JOB_NATTS		22

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr finish_plans[2];	/* [notify]: rows back only to notify */

/*
 * The ids go through an array, not a join: a generic plan of a join with a
 * LIMIT $2 sub-select hashes the whole queue, while id = ANY (ARRAY(...))
 * is a primary-key look-up whatever the plan.
 */
static const char *claim_sql =
"WITH u AS ("
"  UPDATE synchub.job_queue q"
"     SET state = 'running', attempts = q.attempts + 1, lease_until = $3,"
"         started_at = $5, worker = $4"
"   WHERE q.id = ANY (ARRAY("
"          SELECT c.id FROM synchub.job_queue c"
"           WHERE c.queue = $1 AND c.state = 'pending' AND c.run_at <= $5"
"           ORDER BY c.priority, c.run_at, c.id LIMIT $2 FOR UPDATE SKIP LOCKED))"
"  RETURNING q.*)"
" SELECT * FROM u ORDER BY priority, run_at, id";

/*
 * Moves running jobs (all of $1, or one at attempt $3) to the history.
 * "state <> 'pending'" (the same as "= 'running'" in this table) keeps the
 * planner on the primary key rather than scanning the running-jobs index.
 */
static const char *finish_sql =
"WITH d AS ("
"  DELETE FROM synchub.job_queue q"
"   WHERE q.id = ANY ($1) AND q.state <> 'pending'"
"     AND ($3::integer IS NULL OR q.attempts = $3)"
"  RETURNING q.*)"
" INSERT INTO synchub.job_history"
" SELECT d.id, d.queue, d.kind, d.integration_id, d.payload, d.priority, 'succeeded',"
"        d.run_at, d.attempts, d.max_attempts, NULL, d.dedup_key, d.records_processed,"
"        d.records_total, d.checkpoint, coalesce($2, d.result), d.last_error, d.created_at,"
"        d.started_at, $4, d.worker, d.owner"
"   FROM d";

/*
 * Prepare and keep a statement with a generic plan: the statements are
 * written so that the generic plan is the good one (primary-key and claim
 * index look-ups), and a custom plan per call would re-plan every time.
 */
SPIPlanPtr
queue_prepare_saved(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

	if (plan == NULL)
		elog(ERROR, "could not prepare queue statement: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not save queue statement");
	return plan;
}

static void
append_json_text(StringInfo buf, Datum d, bool isnull)
{
	if (isnull)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, TextDatumGetCString(d));
}

static void
append_json_int(StringInfo buf, Datum d, bool isnull, bool is_int8)
{
	if (isnull)
		appendStringInfoString(buf, "null");
	else if (is_int8)
		appendStringInfo(buf, INT64_FORMAT, DatumGetInt64(d));
	else
		appendStringInfo(buf, "%d", DatumGetInt32(d));
}

/*
 * NOTIFY synchub_jobs for a job row (any of the three job row types), with
 * the keys of _notify_job in sql/install/10_queue.sql.
 */
void
queue_notify_row(HeapTuple tuple, TupleDesc desc)
{
	StringInfoData buf;
	bool		isnull;
	Datum		d;

	if (!synchub_notify)
		return;

	initStringInfo(&buf);
	d = heap_getattr(tuple, JOB_ID, desc, &isnull);
	appendStringInfoString(&buf, "{\"id\" : ");
	append_json_int(&buf, d, isnull, true);
	d = heap_getattr(tuple, JOB_QUEUE, desc, &isnull);
	appendStringInfoString(&buf, ", \"queue\" : ");
	append_json_text(&buf, d, isnull);
	d = heap_getattr(tuple, JOB_KIND, desc, &isnull);
	appendStringInfoString(&buf, ", \"kind\" : ");
	append_json_text(&buf, d, isnull);
	d = heap_getattr(tuple, JOB_STATE, desc, &isnull);
	appendStringInfoString(&buf, ", \"state\" : ");
	append_json_text(&buf, d, isnull);
	d = heap_getattr(tuple, JOB_INTEGRATION, desc, &isnull);
	appendStringInfoString(&buf, ", \"integration_id\" : ");
	append_json_int(&buf, d, isnull, true);
	d = heap_getattr(tuple, JOB_ATTEMPTS, desc, &isnull);
	appendStringInfoString(&buf, ", \"attempts\" : ");
	append_json_int(&buf, d, isnull, false);
	d = heap_getattr(tuple, JOB_PROCESSED, desc, &isnull);
	appendStringInfoString(&buf, ", \"records_processed\" : ");
	append_json_int(&buf, d, isnull, true);
	d = heap_getattr(tuple, JOB_TOTAL, desc, &isnull);
	appendStringInfoString(&buf, ", \"records_total\" : ");
	append_json_int(&buf, d, isnull, true);
	appendStringInfoChar(&buf, '}');

	Async_Notify("synchub_jobs", buf.data);
	pfree(buf.data);
}

/*
 * Move running jobs to the history as succeeded; returns how many moved.
 * ids: the job ids; attempt: 0 for "any attempt"; result may be NULL.
 * Must be called inside SPI_connect.
 */
static uint64
finish_jobs(ArrayType *ids, int32 attempt, Jsonb *result)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;
	SPIPlanPtr *plan = &finish_plans[synchub_notify ? 1 : 0];

	if (*plan == NULL)
	{
		Oid			types[4] = {INT8ARRAYOID, JSONBOID, INT4OID, TIMESTAMPTZOID};

		*plan = queue_prepare_saved(synchub_notify ? psprintf("%s RETURNING *", finish_sql) : finish_sql,
									4, types);
	}
	values[0] = PointerGetDatum(ids);
	values[1] = result ? JsonbPGetDatum(result) : (Datum) 0;
	nulls[1] = result ? ' ' : 'n';
	values[2] = Int32GetDatum(attempt);
	nulls[2] = attempt > 0 ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(GetCurrentTimestamp());

	rc = SPI_execute_plan(*plan, values, nulls, false, 0);
	if (rc != (synchub_notify ? SPI_OK_INSERT_RETURNING : SPI_OK_INSERT))
		elog(ERROR, "could not complete jobs: %s", SPI_result_code_string(rc));

	if (synchub_notify)
		for (uint64 i = 0; i < SPI_processed; i++)
			queue_notify_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	return SPI_processed;
}

/* Explain, by error or quietly, why a per-job call matched no running job. */
static void
refuse(int64 job_id, int32 attempt, const char *action)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	int			rc;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(attempt);
	nulls[1] = attempt > 0 ? ' ' : 'n';
	values[2] = CStringGetTextDatum(action);
	rc = SPI_execute_with_args("SELECT synchub._job_refusal($1, $2, $3)",
							   3, types, values, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up job " INT64_FORMAT, job_id);
}

PG_FUNCTION_INFO_V1(synchub_claim);
Datum
synchub_claim(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		max_jobs;
	Interval   *lease;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz lease_until;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			rc;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("queue must not be null")));
	max_jobs = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT32(1);
	if (max_jobs < 1 || max_jobs > MAX_CLAIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_jobs must be between 1 and %d", MAX_CLAIM),
				 PG_ARGISNULL(1) ? errdetail("The value was NULL.") :
				 errdetail("The value was %d.", max_jobs)));
	lease = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
	lease_until = lease ? DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
																  TimestampTzGetDatum(now),
																  IntervalPGetDatum(lease))) : now;
	if (lease == NULL || lease_until <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be a positive interval"),
				 lease ? errdetail("The value was %s.",
								   DatumGetCString(DirectFunctionCall1(interval_out,
																	   IntervalPGetDatum(lease)))) :
				 errdetail("The value was NULL.")));

	synchub_init_materialized_srf(fcinfo);

	SPI_connect();
	if (claim_plan == NULL)
	{
		Oid			types[5] = {TEXTOID, INT4OID, TIMESTAMPTZOID, TEXTOID, TIMESTAMPTZOID};

		claim_plan = queue_prepare_saved(claim_sql, 5, types);
	}
	values[0] = PG_GETARG_DATUM(0);
	values[1] = Int32GetDatum(max_jobs);
	values[2] = TimestampTzGetDatum(lease_until);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[4] = TimestampTzGetDatum(now);

	rc = SPI_execute_plan(claim_plan, values, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not claim jobs: %s", SPI_result_code_string(rc));
	if (SPI_tuptable->tupdesc->natts != rsinfo->setDesc->natts)
		elog(ERROR, "synchub.jobs does not match synchub.job_queue");

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];

		queue_notify_row(tuple, SPI_tuptable->tupdesc);
		tuplestore_puttuple(rsinfo->setResult, tuple);
	}
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(synchub_complete);
Datum
synchub_complete(PG_FUNCTION_ARGS)
{
	int64		job_id;
	int32		attempt = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	Datum		id;
	uint64		done;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be null")));
	job_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(2) && attempt < 1)
		PG_RETURN_BOOL(false);	/* no claim ever returns such an attempt */

	id = Int64GetDatum(job_id);
	SPI_connect();
	done = finish_jobs(construct_array(&id, 1, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE),
					   attempt, PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	if (done == 0)
		refuse(job_id, attempt, "complete");
	SPI_finish();
	PG_RETURN_BOOL(done > 0);
}

PG_FUNCTION_INFO_V1(synchub_complete_many);
Datum
synchub_complete_many(PG_FUNCTION_ARGS)
{
	uint64		done;

	if (PG_ARGISNULL(0))
		PG_RETURN_INT32(0);
	SPI_connect();
	done = finish_jobs(PG_GETARG_ARRAYTYPE_P(0), 0, NULL);
	SPI_finish();
	PG_RETURN_INT32((int32) done);
}
