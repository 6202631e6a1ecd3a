/*-------------------------------------------------------------------------
 * upsert_sql.c
 *    synchub.bulk_upsert(): the SQL entry point of the bulk upsert, its
 *    arguments and its options object.
 *
 * The work is done by upsert_records() (upsert.c); this file turns SQL
 * arguments into its C arguments and the counts into the result row.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "upsert.h"

/*---- options ----*/

void
upsert_default_options(UpsertOptions *opts)
{
	memset(opts, 0, sizeof(UpsertOptions));
	opts->batch_size = UPSERT_DEFAULT_BATCH_SIZE;
}

static void
option_error(const char *name, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"%s\" must be %s", name, expected)));
}

static int64
option_int(const char *name, JsonbValue *v, int64 min, int64 max)
{
	int64		result;

	if (v->type != jbvNumeric)
		option_error(name, "a number");
	result = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	if (result < min || result > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be between " INT64_FORMAT " and " INT64_FORMAT,
						name, min, max)));
	return result;
}

void
upsert_parse_options(Jsonb *options, UpsertOptions *opts)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		JsonbIteratorNext(&it, &v, true);

		if (strcmp(name, "on_reject") == 0)
		{
			char	   *s;

			if (v.type != jbvString)
				option_error(name, "\"reject\" or \"error\"");
			s = pnstrdup(v.val.string.val, v.val.string.len);
			if (strcmp(s, "reject") == 0)
				opts->reject_error = false;
			else if (strcmp(s, "error") == 0)
				opts->reject_error = true;
			else
				option_error(name, "\"reject\" or \"error\"");
		}
		else if (strcmp(name, "strict") == 0)
		{
			if (v.type != jbvBool)
				option_error(name, "true or false");
			opts->strict = v.val.boolean;
		}
		else if (strcmp(name, "batch_size") == 0)
			opts->batch_size = (int) option_int(name, &v, 1, UPSERT_MAX_BATCH_SIZE);
		else if (strcmp(name, "job_id") == 0)
		{
			opts->has_job_id = (v.type != jbvNull);
			if (opts->has_job_id)
				opts->job_id = option_int(name, &v, PG_INT64_MIN, PG_INT64_MAX);
		}
		else if (strcmp(name, "integration_id") == 0)
		{
			opts->has_integration_id = (v.type != jbvNull);
			if (opts->has_integration_id)
				opts->integration_id = option_int(name, &v, PG_INT64_MIN, PG_INT64_MAX);
		}
		else if (strcmp(name, "external_id_path") == 0)
		{
			if (v.type != jbvString)
				option_error(name, "a JSON path string");
			opts->external_id_path = pnstrdup(v.val.string.val, v.val.string.len);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\"", name),
					 errhint("Options are on_reject, strict, batch_size, job_id, integration_id and external_id_path.")));
	}
}

PG_FUNCTION_INFO_V1(synchub_bulk_upsert);

/*
 * synchub.bulk_upsert(target regclass, records jsonb, key_columns text[],
 *                     field_map jsonb, options jsonb)
 *   RETURNS TABLE(inserted, updated, unchanged, rejected)
 */
Datum
synchub_bulk_upsert(PG_FUNCTION_ARGS)
{
	FuncCallContext *fctx;

	if (SRF_IS_FIRSTCALL())
	{
		UpsertOptions opts;
		UpsertCounts counts;
		Jsonb	   *field_map = NULL;
		ArrayType  *keys_arr;
		Datum	   *key_datums;
		bool	   *key_nulls;
		int			nkeys;
		char	  **keys;
		TupleDesc	tupdesc;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		MemoryContext old;

		fctx = SRF_FIRSTCALL_INIT();

		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("target must not be null")));
		if (PG_ARGISNULL(1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("records must be a JSON array of objects")));
		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key_columns must name at least one column")));
		if (!PG_ARGISNULL(3))
		{
			field_map = PG_GETARG_JSONB_P(3);
			if (JB_ROOT_IS_SCALAR(field_map) &&
				getIthJsonbValueFromContainer(&field_map->root, 0)->type == jbvNull)
				field_map = NULL;
		}

		keys_arr = PG_GETARG_ARRAYTYPE_P(2);
		if (ARR_NDIM(keys_arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key_columns must be a one-dimensional array")));
		deconstruct_array(keys_arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &key_datums, &key_nulls, &nkeys);
		keys = palloc(sizeof(char *) * Max(nkeys, 1));
		for (int i = 0; i < nkeys; i++)
		{
			if (key_nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("key_columns must not contain nulls")));
			keys[i] = TextDatumGetCString(key_datums[i]);
		}

		upsert_default_options(&opts);
		upsert_parse_options(PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4), &opts);

		upsert_records(PG_GETARG_OID(0), PG_GETARG_JSONB_P(1), keys, nkeys,
					   field_map, &opts, &counts);

		old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		tupdesc = BlessTupleDesc(tupdesc);
		values[0] = Int64GetDatum(counts.inserted);
		values[1] = Int64GetDatum(counts.updated);
		values[2] = Int64GetDatum(counts.unchanged);
		values[3] = Int64GetDatum(counts.rejected);
		fctx->user_fctx = heap_form_tuple(tupdesc, values, nulls);
		MemoryContextSwitchTo(old);
	}

	fctx = SRF_PERCALL_SETUP();
	if (fctx->call_cntr == 0)
		SRF_RETURN_NEXT(fctx, HeapTupleGetDatum((HeapTuple) fctx->user_fctx));
	SRF_RETURN_DONE(fctx);
}
