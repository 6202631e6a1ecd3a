/*-------------------------------------------------------------------------
 * queue_enqueue.c
 *    synchub.enqueue_many: a JSON array of jobs in one statement.
 *
 * The array is read once: every element is validated and converted into
 * column arrays, ids are drawn from the job sequence up front, and one
 * saved INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING writes them
 * all.  An element whose dedup key an unfinished job already holds (or that
 * repeats a dedup key earlier in the same array) is not inserted; it gets
 * the holder's id.  Ids come back in input order.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "queue.h"
#include "synchub.h"
#include "worker_control.h"

#define NCOLS 11

typedef struct JobArrays
{
	int			n;
	Datum	   *id;
	Datum	   *queue;
	Datum	   *kind;
	Datum	   *integration_id;
	bool	   *integration_null;
	Datum	   *payload;
	Datum	   *priority;
	Datum	   *run_at;
	Datum	   *max_attempts;
	Datum	   *dedup_key;
	bool	   *dedup_null;
} JobArrays;

/*
 * Four variants of the insert, prepared on first use: ON CONFLICT only when
 * the batch has dedup keys (a speculative insertion costs an extra WAL
 * record per row), and whole rows back only when they are to be notified.
 */
static SPIPlanPtr insert_plans[2][2];
static SPIPlanPtr holder_plan = NULL;

static const char *insert_head =
"INSERT INTO synchub.job_queue AS q"
"  (id, queue, kind, integration_id, payload, priority, run_at, max_attempts, dedup_key, created_at, owner)"
" SELECT u.*, $10, $11 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[],"
"                           $6::integer[], $7::timestamptz[], $8::integer[], $9::text[]) AS u";

static SPIPlanPtr
insert_plan(bool dedup, bool whole_rows)
{
	SPIPlanPtr *plan = &insert_plans[dedup][whole_rows];

	if (*plan == NULL)
	{
		Oid			types[NCOLS] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
			JSONBARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZOID, REGROLEOID};

		*plan = queue_prepare_saved(psprintf("%s%s RETURNING %s", insert_head,
											 dedup ? " ON CONFLICT (queue, dedup_key)"
											 " WHERE dedup_key IS NOT NULL DO NOTHING" : "",
											 whole_rows ? "q.*" : "q.id"),
									NCOLS, types);
	}
	return *plan;
}

static const char *holder_sql =
"SELECT id FROM synchub.job_queue WHERE queue = $1 AND dedup_key = $2";

static void
job_error(int index, const char *key, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid \"%s\" in job %d of the array", key, index),
			 errdetail("It must be %s.", expected)));
}

static Datum
text_of(JsonbValue *v, int index, const char *key, int maxlen)
{
	if (v->type != jbvString || v->val.string.len < 1 || v->val.string.len > maxlen)
		job_error(index, key, psprintf("a string of 1 to %d characters", maxlen));
	return PointerGetDatum(cstring_to_text_with_len(v->val.string.val, v->val.string.len));
}

static int64
int_of(JsonbValue *v, int index, const char *key, int64 min, int64 max)
{
	int64		r;

	if (v->type != jbvNumeric)
		job_error(index, key, "a number");
	r = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	if (r < min || r > max)
		job_error(index, key, psprintf("a number between " INT64_FORMAT " and " INT64_FORMAT, min, max));
	return r;
}

/* Read element i (an object) into slot i of the arrays. */
static void
read_job(JsonbValue *elem, int i, JobArrays *a, TimestampTz now, Datum empty)
{
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;
	bool		have_kind = false;

	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job %d of the array is not a JSON object", i)));

	a->queue[i] = CStringGetTextDatum("default");
	a->integration_null[i] = true;
	a->payload[i] = empty;
	a->priority[i] = Int32GetDatum(0);
	a->run_at[i] = TimestampTzGetDatum(now);
	a->max_attempts[i] = Int32GetDatum(5);
	a->dedup_null[i] = true;

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (strcmp(key, "kind") == 0)
		{
			a->kind[i] = text_of(&v, i, key, 128);
			have_kind = true;
		}
		else if (strcmp(key, "queue") == 0)
			a->queue[i] = text_of(&v, i, key, 128);
		else if (strcmp(key, "payload") == 0)
		{
			if (v.type != jbvNull)
				a->payload[i] = JsonbPGetDatum(JsonbValueToJsonb(&v));
		}
		else if (strcmp(key, "integration_id") == 0)
		{
			a->integration_null[i] = (v.type == jbvNull);
			if (v.type != jbvNull)
				a->integration_id[i] = Int64GetDatum(int_of(&v, i, key, PG_INT64_MIN, PG_INT64_MAX));
		}
		else if (strcmp(key, "priority") == 0)
			a->priority[i] = Int32GetDatum((int32) int_of(&v, i, key, PG_INT32_MIN, PG_INT32_MAX));
		else if (strcmp(key, "max_attempts") == 0)
			a->max_attempts[i] = Int32GetDatum((int32) int_of(&v, i, key, 1, PG_INT32_MAX));
		else if (strcmp(key, "run_at") == 0)
		{
			if (v.type != jbvString)
				job_error(i, key, "a timestamp string");
			a->run_at[i] = DirectFunctionCall3(timestamptz_in,
											   CStringGetDatum(pnstrdup(v.val.string.val, v.val.string.len)),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		}
		else if (strcmp(key, "dedup_key") == 0)
		{
			a->dedup_null[i] = (v.type == jbvNull);
			if (v.type != jbvNull)
				a->dedup_key[i] = text_of(&v, i, key, 1000);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in job %d of the array", key, i),
					 errhint("Keys are the argument names of synchub.enqueue.")));
	}
	if (!have_kind)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job %d of the array has no \"kind\"", i)));
}

static ArrayType *
make_array(Datum *values, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return construct_md_array(values, nulls, 1, dims, lbs, type, typlen, typbyval, typalign);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* The id of the unfinished job holding (queue, dedup_key), or 0. */
static int64
dedup_holder(Datum queue, Datum dedup_key)
{
	Datum		values[2] = {queue, dedup_key};
	bool		isnull;

	if (holder_plan == NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};

		holder_plan = queue_prepare_saved(holder_sql, 2, types);
	}
	if (SPI_execute_plan(holder_plan, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a dedup key");
	if (SPI_processed == 0)
		return 0;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* A job whose holder finished in between: enqueue it on its own. */
static int64
enqueue_one(JobArrays *a, int i)
{
	Oid			types[8] = {TEXTOID, JSONBOID, INT8OID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT4OID, TEXTOID};
	Datum		values[8] = {a->kind[i], a->payload[i], a->integration_id[i], a->queue[i],
	a->priority[i], a->run_at[i], a->max_attempts[i], a->dedup_key[i]};
	char		nulls[8] = {' ', ' ', a->integration_null[i] ? 'n' : ' ', ' ', ' ', ' ', ' ',
	a->dedup_null[i] ? 'n' : ' '};
	bool		isnull;

	if (SPI_execute_with_args("SELECT synchub.enqueue($1, $2, $3, $4, $5, $6, $7, $8)",
							  8, types, values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not enqueue a job");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

#define ALLOC_COLUMN(field, type) (a.field = (type *) palloc0(sizeof(type) * a.n))

PG_FUNCTION_INFO_V1(synchub_enqueue_many);
Datum
synchub_enqueue_many(PG_FUNCTION_ARGS)
{
	Jsonb	   *jobs;
	JobArrays	a;
	Oid			seq;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64	   *inserted;
	uint64		ninserted;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[NCOLS];
	Datum		empty;
	bool		has_dedup = false;
	int			rc;

	if (PG_ARGISNULL(0) || !JB_ROOT_IS_ARRAY(PG_GETARG_JSONB_P(0)) ||
		JB_ROOT_IS_SCALAR(PG_GETARG_JSONB_P(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("jobs must be a JSON array of objects")));
	jobs = PG_GETARG_JSONB_P(0);
	synchub_init_materialized_srf(fcinfo);

	a.n = JB_ROOT_COUNT(jobs);
	if (a.n == 0)
		return (Datum) 0;
	ALLOC_COLUMN(id, Datum);
	ALLOC_COLUMN(queue, Datum);
	ALLOC_COLUMN(kind, Datum);
	ALLOC_COLUMN(integration_id, Datum);
	ALLOC_COLUMN(integration_null, bool);
	ALLOC_COLUMN(payload, Datum);
	ALLOC_COLUMN(priority, Datum);
	ALLOC_COLUMN(run_at, Datum);
	ALLOC_COLUMN(max_attempts, Datum);
	ALLOC_COLUMN(dedup_key, Datum);
	ALLOC_COLUMN(dedup_null, bool);

	empty = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	for (int i = 0; i < a.n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&jobs->root, i);

		read_job(elem, i, &a, now, empty);
		CHECK_FOR_INTERRUPTS();
	}

	seq = get_relname_relid("job_id_seq", get_namespace_oid("synchub", false));
	for (int i = 0; i < a.n; i++)
		a.id[i] = Int64GetDatum(nextval_internal(seq, true));

	SPI_connect();
	values[0] = PointerGetDatum(make_array(a.id, NULL, a.n, INT8OID));
	values[1] = PointerGetDatum(make_array(a.queue, NULL, a.n, TEXTOID));
	values[2] = PointerGetDatum(make_array(a.kind, NULL, a.n, TEXTOID));
	values[3] = PointerGetDatum(make_array(a.integration_id, a.integration_null, a.n, INT8OID));
	values[4] = PointerGetDatum(make_array(a.payload, NULL, a.n, JSONBOID));
	values[5] = PointerGetDatum(make_array(a.priority, NULL, a.n, INT4OID));
	values[6] = PointerGetDatum(make_array(a.run_at, NULL, a.n, TIMESTAMPTZOID));
	values[7] = PointerGetDatum(make_array(a.max_attempts, NULL, a.n, INT4OID));
	values[8] = PointerGetDatum(make_array(a.dedup_key, a.dedup_null, a.n, TEXTOID));
	values[9] = TimestampTzGetDatum(now);
	values[10] = ObjectIdGetDatum(GetUserId());

	for (int i = 0; i < a.n && !has_dedup; i++)
		has_dedup = !a.dedup_null[i];
	rc = SPI_execute_plan(insert_plan(has_dedup, synchub_notify), values, NULL, false, 0);
	if (rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not enqueue jobs: %s", SPI_result_code_string(rc));

	ninserted = SPI_processed;
	inserted = (int64 *) palloc(sizeof(int64) * (ninserted + 1));
	for (uint64 i = 0; i < ninserted; i++)
	{
		bool		isnull;

		inserted[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		if (synchub_notify)
			queue_notify_row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	}
	qsort(inserted, ninserted, sizeof(int64), cmp_int64);
	for (int i = 0; i < a.n; i++)
		worker_wake_on_commit(TextDatumGetCString(a.queue[i]));

	for (int i = 0; i < a.n; i++)
	{
		int64		id = DatumGetInt64(a.id[i]);
		Datum		out;
		bool		outnull = false;

		if (ninserted < (uint64) a.n &&
			bsearch(&id, inserted, ninserted, sizeof(int64), cmp_int64) == NULL)
		{
			id = dedup_holder(a.queue[i], a.dedup_key[i]);
			if (id == 0)
				id = enqueue_one(&a, i);
		}
		out = Int64GetDatum(id);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &out, &outnull);
	}
	SPI_finish();
	return (Datum) 0;
}
