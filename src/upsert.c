/*-------------------------------------------------------------------------
 * upsert.c
 *    Bulk upsert: the core, upsert_records(), behind synchub.bulk_upsert()
 *    (upsert_sql.c) and the sync engine.
 *
 * A call makes two passes over the records array (which is in memory as
 * one jsonb value already):
 *
 *  1. Keys.  Each record's key columns are found and converted; a record
 *     that is not an object, or whose key is missing, null or of a bad
 *     type, is rejected here.  The keys go into a hash table: when a key
 *     comes again, the later record replaces the earlier one (last wins,
 *     counted once), so no statement ever meets the same key twice.  The
 *     surviving records are then sorted by key, so that concurrent calls
 *     lock rows in one order and cannot deadlock each other.
 *
 *  2. Batches of batch_size records, in key order, in a memory context
 *     reset after each batch: the other columns are converted (a bad value
 *     rejects its record), each record becomes a row of the target's type,
 *     and upsert_exec.c writes the batch with one statement.
 *
 * Memory: the input, plus per record its key and a few words; converted
 * rows exist for one batch at a time.
 *
 * Conversion errors are caught per batch with one subtransaction that only
 * restarts after a bad record (upsert_guarded_loop); rejects are written to
 * synchub.rejects as the caller, outside those subtransactions.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "upsert_internal.h"

/* A record that passed the key pass. */
typedef struct KeyEntry
{
	int			index;			/* in the records array */
	uint32		hash;
	bool		superseded;		/* a later record has the same key */
	Datum	   *keys;			/* nkeys converted key values */
} KeyEntry;

/* State of the key pass. */
typedef struct KeyPass
{
	KeyEntry   *entries;
	int			nentries;
	MemoryContext scratch;		/* reset every record */
} KeyPass;

/* State of one batch of the write pass. */
typedef struct BatchPass
{
	KeyEntry  **entries;
	UpsertRow  *rows;
	int			nrows;
	Datum	   *values;			/* natts, reused per record */
	bool	   *nulls;
} BatchPass;

static JsonbContainer *record_object(UpsertRun *run, int index);
static void key_step(UpsertRun *run, int item, void *arg);
static bool keys_equal(UpsertTarget *t, KeyEntry *a, KeyEntry *b);
static void dedup(UpsertRun *run, KeyPass *kp);
static int	compare_entries(const void *a, const void *b, void *arg);
static void row_step(UpsertRun *run, int item, void *arg);
static void write_batches(UpsertRun *run, KeyEntry **live, int nlive);

/*---- records ----*/

/* Record index of the array as an object container, or NULL. */
static JsonbContainer *
record_object(UpsertRun *run, int index)
{
	JsonbValue *v = getIthJsonbValueFromContainer(run->records, index);

	if (v != NULL && v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		return v->val.binary.data;
	return NULL;
}

/*
 * Writes a rejected record to synchub.rejects as the caller, or fails the
 * call when on_reject is "error".
 */
void
upsert_reject(UpsertRun *run, int index, ErrorData *edata)
{
	const UpsertOptions *opts = run->opts;
	JsonbValue *rec;
	JsonbValue	buf;
	JsonbValue *ext = NULL;
	Datum		values[8];
	char		nulls[8];
	int			rc;

	if (opts->reject_error)
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("record %d of the array was rejected", index),
				 errdetail_internal("%s", edata->message)));

	if (opts->as_table_owner)
		synchub_as_caller(&run->caller);
	if (run->reject_plan == NULL)
	{
		Oid			types[8] = {INT8OID, INT8OID, REGCLASSOID, TEXTOID, INT4OID,
		JSONBOID, TEXTOID, TEXTOID};

		/* a sync's rejects belong to its integration's owner, who reads them */
		run->reject_plan = SPI_prepare(opts->as_table_owner
									   ? "INSERT INTO synchub.rejects (job_id, integration_id, target, "
									   "external_id, record_index, record, error, sqlstate, owner) "
									   "SELECT $1, $2, $3, $4, $5, $6, $7, $8, "
									   "coalesce((SELECT i.owner FROM synchub.integrations i WHERE i.id = $2), "
									   "current_user::regrole)"
									   : "INSERT INTO synchub.rejects (job_id, integration_id, target, "
									   "external_id, record_index, record, error, sqlstate) "
									   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8, types);
		if (run->reject_plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	}

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(opts->job_id);
	nulls[0] = opts->has_job_id ? ' ' : 'n';
	values[1] = Int64GetDatum(opts->integration_id);
	nulls[1] = opts->has_integration_id ? ' ' : 'n';
	values[2] = ObjectIdGetDatum(RelationGetRelid(run->target.rel));
	rec = getIthJsonbValueFromContainer(run->records, index);
	if (run->has_external_id && rec->type == jbvBinary)
		ext = upsert_path_find(rec->val.binary.data, &run->external_id, &buf);
	if (ext == NULL || ext->type == jbvNull)
		nulls[3] = 'n';
	else if (ext->type == jbvString)
		values[3] = PointerGetDatum(cstring_to_text_with_len(ext->val.string.val,
															 ext->val.string.len));
	else
		values[3] = PointerGetDatum(cstring_to_text(JsonbToCString(NULL,
																   &JsonbValueToJsonb(ext)->root, 0)));
	values[4] = Int32GetDatum(index);
	values[5] = JsonbPGetDatum(JsonbValueToJsonb(rec));
	values[6] = PointerGetDatum(cstring_to_text(edata->message ? edata->message : "unknown error"));
	values[7] = PointerGetDatum(cstring_to_text(unpack_sql_state(edata->sqlerrcode)));

	rc = SPI_execute_plan(run->reject_plan, values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	if (opts->as_table_owner)	/* back to the table's owner for the records after */
		synchub_as_table_owner_again(&run->caller);
	run->counts->rejected++;
}

/*---- pass 1: keys ----*/

static void
key_step(UpsertRun *run, int item, void *arg)
{
	KeyPass    *kp = (KeyPass *) arg;
	UpsertTarget *t = &run->target;
	JsonbContainer *obj;
	KeyEntry   *e = &kp->entries[kp->nentries];
	Datum		tmp[INDEX_MAX_KEYS];
	uint32		hash = 0;
	MemoryContext old;

	run->current = item;
	MemoryContextReset(kp->scratch);
	old = MemoryContextSwitchTo(kp->scratch);

	obj = record_object(run, item);
	if (obj == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("record is not a JSON object")));
	for (int k = 0; k < t->nkeys; k++)
	{
		UpsertColumn *col = &t->cols[t->keycols[k]];
		JsonbValue	buf;
		JsonbValue *v = upsert_path_find(obj, &col->path, &buf);
		bool		isnull;

		if (v == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key column \"%s\" is missing", col->name)));
		tmp[k] = upsert_convert(col, v, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("key column \"%s\" is null", col->name)));
		hash = hash_combine(hash, DatumGetUInt32(FunctionCall1Coll(col->hash_fn,
																   col->collation,
																   tmp[k])));
	}
	MemoryContextSwitchTo(old);

	e->index = item;
	e->hash = hash;
	e->superseded = false;
	e->keys = palloc(sizeof(Datum) * t->nkeys);
	for (int k = 0; k < t->nkeys; k++)
	{
		UpsertColumn *col = &t->cols[t->keycols[k]];

		e->keys[k] = datumCopy(tmp[k], col->typbyval, col->typlen);
	}
	kp->nentries++;
}

static bool
keys_equal(UpsertTarget *t, KeyEntry *a, KeyEntry *b)
{
	if (a->hash != b->hash)
		return false;
	for (int k = 0; k < t->nkeys; k++)
	{
		UpsertColumn *col = &t->cols[t->keycols[k]];

		if (!DatumGetBool(FunctionCall2Coll(col->eq_fn, col->collation,
											a->keys[k], b->keys[k])))
			return false;
	}
	return true;
}

/* Marks every entry that a later entry with the same key supersedes. */
static void
dedup(UpsertRun *run, KeyPass *kp)
{
	uint32		size = 16;
	int		   *slots;

	while (size < (uint32) kp->nentries * 2)
		size *= 2;
	slots = palloc(sizeof(int) * size);
	memset(slots, -1, sizeof(int) * size);

	for (int i = 0; i < kp->nentries; i++)
	{
		KeyEntry   *e = &kp->entries[i];
		uint32		s = e->hash & (size - 1);

		for (;;)
		{
			if (slots[s] < 0)
			{
				slots[s] = i;
				break;
			}
			if (keys_equal(&run->target, &kp->entries[slots[s]], e))
			{
				kp->entries[slots[s]].superseded = true;
				slots[s] = i;
				break;
			}
			s = (s + 1) & (size - 1);
		}
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(slots);
}

/*
 * Write order: by key hash, then (for equal hashes) by the key types'
 * btree order.  Any order shared by all sessions keeps concurrent calls
 * from deadlocking; the hash is cheap to compare.
 */
static int
compare_entries(const void *a, const void *b, void *arg)
{
	UpsertTarget *t = (UpsertTarget *) arg;
	const KeyEntry *ea = *(KeyEntry *const *) a;
	const KeyEntry *eb = *(KeyEntry *const *) b;

	if (ea->hash != eb->hash)
		return ea->hash < eb->hash ? -1 : 1;
	for (int k = 0; k < t->nkeys; k++)
	{
		UpsertColumn *col = &t->cols[t->keycols[k]];
		int32		r;

		if (col->cmp_fn == NULL)
			continue;
		r = DatumGetInt32(FunctionCall2Coll(col->cmp_fn, col->collation,
											ea->keys[k], eb->keys[k]));
		if (r != 0)
			return r;
	}
	return ea->index - eb->index;
}

/*---- pass 2: batches ----*/

static void
row_step(UpsertRun *run, int item, void *arg)
{
	BatchPass  *bp = (BatchPass *) arg;
	UpsertTarget *t = &run->target;
	KeyEntry   *e = bp->entries[item];
	JsonbContainer *obj;
	UpsertRow  *row = &bp->rows[bp->nrows];
	Bitmapset  *present = NULL;

	run->current = e->index;
	obj = record_object(run, e->index);
	for (int a = 0; a < t->tupdesc->natts; a++)
		bp->nulls[a] = true;

	for (int c = 0; c < t->ncols; c++)
	{
		UpsertColumn *col = &t->cols[c];
		int			a = col->attnum - 1;

		if (col->key_pos >= 0)
		{
			bp->values[a] = e->keys[col->key_pos];
			bp->nulls[a] = false;
		}
		else
		{
			JsonbValue	buf;
			JsonbValue *v = upsert_path_find(obj, &col->path, &buf);

			if (v == NULL)
				continue;		/* missing: not written */
			bp->values[a] = upsert_convert(col, v, &bp->nulls[a]);
		}
		present = bms_add_member(present, c);
	}

	row->index = e->index;
	row->tuple = HeapTupleGetDatum(heap_form_tuple(t->tupdesc, bp->values, bp->nulls));
	row->present = present;
	bp->nrows++;
}

static void
write_batches(UpsertRun *run, KeyEntry **live, int nlive)
{
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"synchub upsert batch",
													ALLOCSET_DEFAULT_SIZES);
	int			natts = run->target.tupdesc->natts;
	BatchPass	bp;

	bp.values = palloc(sizeof(Datum) * Max(natts, 1));
	bp.nulls = palloc(sizeof(bool) * Max(natts, 1));

	for (int start = 0; start < nlive; start += run->opts->batch_size)
	{
		int			n = Min(run->opts->batch_size, nlive - start);
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(batch_cxt);
		old = MemoryContextSwitchTo(batch_cxt);
		bp.entries = live + start;
		bp.rows = palloc(sizeof(UpsertRow) * n);
		bp.nrows = 0;
		upsert_guarded_loop(run, n, row_step, &bp);
		upsert_exec_rows(run, bp.rows, bp.nrows);
		MemoryContextSwitchTo(old);
	}
	MemoryContextDelete(batch_cxt);
}

/*---- entry points ----*/

void
upsert_records(Oid target, Jsonb *records, char **key_columns, int nkeys,
			   Jsonb *field_map, const UpsertOptions *opts, UpsertCounts *out)
{
	MemoryContext call_cxt;
	MemoryContext old;
	UpsertRun	run;
	Relation	rel;
	KeyPass		kp;
	KeyEntry  **live;
	int			nlive = 0;
	int			n;

	memset(out, 0, sizeof(UpsertCounts));
	if (records == NULL || !JB_ROOT_IS_ARRAY(records) || JB_ROOT_IS_SCALAR(records))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("records must be a JSON array of objects")));

	rel = try_relation_open(target, RowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", target)));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Records can be upserted into tables only.")));

	call_cxt = AllocSetContextCreate(CurrentMemoryContext, "synchub upsert",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(call_cxt);

	memset(&run, 0, sizeof(run));
	if (opts->as_table_owner)
		synchub_become_table_owner(target, &run.caller);
	run.opts = opts;
	run.counts = out;
	run.records = &records->root;
	run.call_cxt = call_cxt;
	run.target.rel = rel;
	run.target.tupdesc = RelationGetDescr(rel);
	run.target.qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													 RelationGetRelationName(rel));
	run.target.partitioned = (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE);
	run.target.rowarraytype = get_array_type(run.target.tupdesc->tdtypeid);
	if (!OidIsValid(run.target.rowarraytype))
		elog(ERROR, "no array type for the row type of \"%s\"", RelationGetRelationName(rel));
	upsert_map_columns(&run.target, key_columns, nkeys, field_map);
	if (opts->touch_column != NULL && get_attnum(target, opts->touch_column) > 0)
		run.target.touch = pstrdup(quote_identifier(opts->touch_column));
	if (opts->external_id_path != NULL)
	{
		upsert_path_parse(opts->external_id_path, &run.external_id, "option \"external_id_path\"");
		run.has_external_id = true;
	}

	n = JsonContainerSize(run.records);
	kp.scratch = AllocSetContextCreate(call_cxt, "synchub upsert record", ALLOCSET_SMALL_SIZES);

	if (opts->strict && run.target.same_name)
	{
		for (int i = 0; i < n; i++)
		{
			JsonbContainer *obj = record_object(&run, i);

			if (obj != NULL)
				upsert_check_strict(&run.target, obj, i);
			if ((i & 1023) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(call_cxt);

	kp.entries = palloc(sizeof(KeyEntry) * Max(n, 1));
	kp.nentries = 0;
	upsert_guarded_loop(&run, n, key_step, &kp);
	MemoryContextDelete(kp.scratch);

	dedup(&run, &kp);
	live = palloc(sizeof(KeyEntry *) * Max(kp.nentries, 1));
	for (int i = 0; i < kp.nentries; i++)
		if (!kp.entries[i].superseded)
			live[nlive++] = &kp.entries[i];
	qsort_arg(live, nlive, sizeof(KeyEntry *), compare_entries, &run.target);

	write_batches(&run, live, nlive);

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (opts->as_table_owner)
		synchub_restore_user(&run.caller);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(call_cxt);
	relation_close(rel, NoLock);
}
