/*-------------------------------------------------------------------------
 * sync.c
 *    The database side of one page of a sync run: the integration's
 *    provider and target, the API call metrics, parsing and mapping a
 *    response (synchub._provider_parse_page, _provider_map_rows), the bulk
 *    upsert of the rows, progress with the checkpoint, and the run's end.
 *
 * Every function runs inside the caller's transaction and connects to SPI
 * itself; results are copied into the caller's memory context.  Nothing
 * here sees a credential except sync_refresh_payload(), whose result the
 * caller must not log or keep.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "providers.h"
#include "sync.h"

/* Run one statement; with want_row, error unless it returned one row. */
static void
run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls, bool want_row)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc < 0 || (want_row && SPI_processed != 1))
		elog(ERROR, "sync statement failed: %s", SPI_result_code_string(rc));
}

static Jsonb *
copy_jsonb(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	MemoryContext old;
	Jsonb	   *j;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	j = DatumGetJsonbPCopy(d);
	MemoryContextSwitchTo(old);
	return j;
}

static char *
copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/* The integration's provider and target table; false if it is gone. */
bool
sync_integration(int64 integration_id, char **provider, Oid *target)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(integration_id)};
	bool		found;
	bool		isnull;

	SPI_connect();
	run("SELECT i.provider, coalesce(i.options->>'target', 'synchub.contacts')::regclass::oid"
		"  FROM synchub.integrations i WHERE i.id = $1",
		1, types, values, NULL, false);
	found = SPI_processed == 1;
	if (found)
	{
		*provider = copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, caller);
		*target = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	return found;
}

/* synchub.record_api_call(); status 0 when no response came. */
void
sync_record_call(int64 integration_id, double latency_ms, int status)
{
	Oid			types[3] = {INT8OID, FLOAT8OID, INT4OID};
	Datum		values[3];

	values[0] = Int64GetDatum(integration_id);
	values[1] = Float8GetDatum(Max(latency_ms, 0.0));
	values[2] = Int32GetDatum(status);
	SPI_connect();
	run("SELECT synchub.record_api_call($1, $2, $3)", 3, types, values, NULL, true);
	SPI_finish();
}

/*
 * Parse a response ({"status", "headers", "body"} of the http engine, or
 * NULL when none came) against the request's checkpoint, and map its
 * records to rows of the target.
 */
void
sync_parse_page(int64 integration_id, const char *provider, const char *mode,
				Jsonb *checkpoint, Jsonb *response, SyncPage *page)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[5] = {TEXTOID, TEXTOID, INT8OID, JSONBOID, JSONBOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', response ? ' ' : 'n'};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(provider);
	values[1] = CStringGetTextDatum(mode);
	values[2] = Int64GetDatum(integration_id);
	values[3] = JsonbPGetDatum(checkpoint);
	values[4] = response ? JsonbPGetDatum(response) : (Datum) 0;
	SPI_connect();
	run("SELECT p->'error'->>'class',"
		"       concat_ws(' ', 'HTTP ' || (p->'error'->>'status'), p->'error'->>'code')"
		"         || coalesce(': ' || (p->'error'->>'message'), ''),"
		"       coalesce((p->'error'->>'refresh')::boolean, false),"
		"       (p->'error'->>'wait_ms')::float8,"
		"       CASE WHEN p ? 'error' THEN NULL WHEN $2 = 'export' THEN p->'results'"
		"            ELSE synchub._provider_map_rows($3, p->'records') END,"
		"       p->'checkpoint', coalesce((p->>'done')::boolean, false),"
		"       (p->>'records_total')::bigint, coalesce((p->'checkpoint'->>'read')::bigint, 0),"
		"       p->'bookmark'"
		"  FROM synchub._provider_parse_page($1, $2, $4, ($5->>'status')::integer, $5->'headers',"
		"         CASE WHEN jsonb_typeof($5->'body') IN ('object', 'array') THEN $5->'body' END) p",
		5, types, values, nulls, true);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(page, 0, sizeof(SyncPage));
	page->error_class = copy_text(tup, desc, 1, caller);
	page->error_message = copy_text(tup, desc, 2, caller);
	page->refresh = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	page->wait_ms = isnull ? -1 : DatumGetFloat8(d);
	page->rows = copy_jsonb(tup, desc, 5, caller);
	page->checkpoint = copy_jsonb(tup, desc, 6, caller);
	page->done = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	d = SPI_getbinval(tup, desc, 8, &isnull);
	page->has_total = !isnull;
	page->total = isnull ? 0 : DatumGetInt64(d);
	page->read = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
	page->bookmark = copy_jsonb(tup, desc, 10, caller);
	SPI_finish();
}

/* Upsert the rows by (integration_id, external_id); rejects are kept. */
void
sync_store_rows(Oid target, int64 job_id, int64 integration_id, Jsonb *rows, UpsertCounts *counts)
{
	static char *keys[2] = {"integration_id", "external_id"};
	UpsertOptions opts;
	UpsertCounts c;

	upsert_default_options(&opts);
	opts.has_job_id = true;
	opts.job_id = job_id;
	opts.has_integration_id = true;
	opts.integration_id = integration_id;
	opts.external_id_path = "external_id";
	opts.touch_column = "synced_at";
	opts.as_table_owner = true;
	memset(&c, 0, sizeof(c));
	upsert_records(target, rows, keys, 2, NULL, &opts, &c);
	counts->inserted += c.inserted;
	counts->updated += c.updated;
	counts->unchanged += c.unchanged;
	counts->rejected += c.rejected;
}

/*
 * Store the per-record results of an export write (synchub._export_apply):
 * the page's checkpoint and count become those it returns.
 */
void
sync_export_apply(int64 job_id, int64 integration_id, Jsonb *results, SyncPage *page)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[4] = {INT8OID, INT8OID, JSONBOID, JSONBOID};
	Datum		values[4];
	HeapTuple	tup;
	bool		isnull;

	values[0] = Int64GetDatum(integration_id);
	values[1] = Int64GetDatum(job_id);
	values[2] = JsonbPGetDatum(page->checkpoint);
	values[3] = JsonbPGetDatum(results);
	SPI_connect();
	run("SELECT c, (c->>'read')::bigint FROM synchub._export_apply($1, $2, $3, $4) c",
		4, types, values, NULL, true);
	tup = SPI_tuptable->vals[0];
	page->checkpoint = copy_jsonb(tup, SPI_tuptable->tupdesc, 1, caller);
	page->read = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
}

/*
 * synchub.progress() with the page's counts and checkpoint (it NOTIFYs);
 * with counts, the checkpoint keeps the run's counts so far under "counts"
 * for an attempt that resumes from it.
 */
void
sync_progress(int64 job_id, int32 attempt, const SyncPage *page, const UpsertCounts *counts)
{
	Oid			types[9] = {INT8OID, INT8OID, INT8OID, JSONBOID, INT4OID,
	INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', page->has_total ? ' ' : 'n', ' ', ' ',
		counts ? ' ' : 'n', counts ? ' ' : 'n', counts ? ' ' : 'n', counts ? ' ' : 'n'};
	bool		isnull;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int64GetDatum(page->read);
	values[2] = Int64GetDatum(page->total);
	values[3] = JsonbPGetDatum(page->checkpoint);
	values[4] = Int32GetDatum(attempt);
	values[5] = Int64GetDatum(counts ? counts->inserted : 0);
	values[6] = Int64GetDatum(counts ? counts->updated : 0);
	values[7] = Int64GetDatum(counts ? counts->unchanged : 0);
	values[8] = Int64GetDatum(counts ? counts->rejected : 0);
	SPI_connect();
	run("SELECT synchub.progress($1, $2, $3,"
		"  CASE WHEN $6 IS NULL THEN $4 ELSE $4 || jsonb_build_object('counts', jsonb_build_object("
		"    'inserted', $6, 'updated', $7, 'unchanged', $8, 'rejected', $9)) END, $5)",
		9, types, values, nulls, true);
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		elog(ERROR, "job %lld is no longer running this attempt", (long long) job_id);
	SPI_finish();
}

/* synchub._sync_finish() */
void
sync_finish(int64 integration_id, const char *status, Jsonb *bookmark, const char *error)
{
	Oid			types[4] = {INT8OID, TEXTOID, JSONBOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', bookmark ? ' ' : 'n', error ? ' ' : 'n'};

	values[0] = Int64GetDatum(integration_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = bookmark ? JsonbPGetDatum(bookmark) : (Datum) 0;
	values[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
	SPI_connect();
	run("SELECT synchub._sync_finish($1, $2, $3, $4)", 4, types, values, nulls, true);
	SPI_finish();
}

/* synchub.complete() with the run's counts as the result. */
void
sync_complete(int64 job_id, int32 attempt, const UpsertCounts *counts, int64 read)
{
	Oid			types[7] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[7];

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(attempt);
	values[2] = Int64GetDatum(read);
	values[3] = Int64GetDatum(counts->inserted);
	values[4] = Int64GetDatum(counts->updated);
	values[5] = Int64GetDatum(counts->unchanged);
	values[6] = Int64GetDatum(counts->rejected);
	SPI_connect();
	run("SELECT synchub.complete($1, jsonb_build_object('records', $3, 'inserted', $4,"
		" 'updated', $5, 'unchanged', $6, 'rejected', $7), $2)",
		7, types, values, NULL, true);
	SPI_finish();
}

/* synchub._integration_pause() for the given number of seconds. */
void
sync_pause(int64 integration_id, double seconds, const char *reason)
{
	Oid			types[3] = {INT8OID, FLOAT8OID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(integration_id);
	values[1] = Float8GetDatum(seconds);
	values[2] = CStringGetTextDatum(reason);
	SPI_connect();
	run("SELECT synchub._integration_pause($1, clock_timestamp() + make_interval(secs => $2), $3)",
		3, types, values, NULL, true);
	SPI_finish();
}

/* Whether the integration's credentials hold a refresh token. */
bool
sync_can_refresh(int64 integration_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(integration_id)};
	bool		isnull;
	bool		can;

	SPI_connect();
	run("SELECT coalesce(synchub._credentials_get($1)->>'refresh_token', '') <> ''",
		1, types, values, NULL, true);
	can = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return can;
}

/*
 * The OAuth refresh request as an http payload {"method", "url",
 * "headers", "body"}.  It holds the refresh token: never log it.
 */
Jsonb *
sync_refresh_payload(int64 integration_id)
{
	MemoryContext caller = CurrentMemoryContext;
	Jsonb	   *req = providers_refresh_request(integration_id);
	Oid			types[1] = {JSONBOID};
	Datum		values[1] = {JsonbPGetDatum(req)};
	Jsonb	   *payload;

	SPI_connect();
	run("SELECT $1 - 'body_text' || jsonb_build_object('body', $1->'body_text')",
		1, types, values, NULL, true);
	payload = copy_jsonb(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, caller);
	SPI_finish();
	explicit_bzero(req, VARSIZE(req));
	pfree(req);
	return payload;
}
