/*-------------------------------------------------------------------------
 * upsert_exec.c
 *    Bulk upsert: the set-based statement that writes a batch of records,
 *    and the isolation of the records that make it fail.
 *
 * A batch is passed as one parameter, an array of the target's row type,
 * to a statement prepared once per set of present columns:
 *
 *   INSERT INTO target AS t (cols)
 *   SELECT r.cols FROM unnest($1) AS r
 *    WHERE NOT EXISTS (SELECT FROM target AS x
 *                       WHERE x.key = r.key AND x.col IS NOT DISTINCT FROM r.col ...
 *                      OFFSET 0)
 *   ON CONFLICT (keys) DO UPDATE SET col = EXCLUDED.col ...
 *    WHERE t.col IS DISTINCT FROM EXCLUDED.col OR ...
 *   RETURNING t.xmax = 0
 *
 * The NOT EXISTS filter drops a record equal to its stored row before the
 * insert is attempted, so an unchanged row is neither locked nor written
 * (no tuple version, no WAL); OFFSET 0 keeps it a per-row index probe
 * instead of a join over the table.  The ON CONFLICT ... WHERE catches a
 * row that became equal concurrently.  RETURNING tells inserts (xmax = 0)
 * from updates; what is neither is unchanged.
 *
 * Each batch runs in a subtransaction.  When it fails with an error that a
 * record can cause (data exception, constraint or check option violation,
 * row-level security, an exception raised by a trigger), the batch is cut
 * in halves and each half retried, down to the single records that fail;
 * those are rejected and the rest stored.  Any other error (privileges,
 * deadlock, cancel, out of memory) fails the call.  The privileges of the
 * statement are checked before the first batch, by the executor's own
 * check, so a caller without them gets the executor's error, not a reject
 * per record.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"

#include "upsert_internal.h"

static UpsertPlan *plan_for(UpsertRun *run, Bitmapset *present);
static char *build_statement(UpsertTarget *t, Bitmapset *present);
static void check_privileges(SPIPlanPtr plan);
static void build_generic_plan(UpsertTarget *t, SPIPlanPtr plan);
static bool is_record_error(ErrorData *edata);
static void exec_piece(UpsertRun *run, UpsertPlan *plan, UpsertRow **rows, int n);

/*---- statements ----*/

static void
append_column_list(StringInfo buf, UpsertTarget *t, Bitmapset *present,
				   const char *prefix, bool keys, bool others)
{
	bool		first = true;
	int			c = -1;

	while ((c = bms_next_member(present, c)) >= 0)
	{
		UpsertColumn *col = &t->cols[c];

		if ((col->key_pos >= 0 && !keys) || (col->key_pos < 0 && !others))
			continue;
		appendStringInfo(buf, "%s%s%s", first ? "" : ", ", prefix,
						 quote_identifier(col->name));
		first = false;
	}
}

/* "a.col" or, for a type without equality, "CAST(a.col AS pg_catalog.text)" */
static void
append_comparable(StringInfo buf, UpsertColumn *col, const char *alias)
{
	if (col->has_eq)
		appendStringInfo(buf, "%s.%s", alias, quote_identifier(col->name));
	else
		appendStringInfo(buf, "CAST(%s.%s AS pg_catalog.text)", alias,
						 quote_identifier(col->name));
}

/* "x.k1 = r.k1 AND ..." for the key columns */
static void
append_key_match(StringInfo buf, UpsertTarget *t, const char *a, const char *b)
{
	for (int k = 0; k < t->nkeys; k++)
	{
		const char *name = quote_identifier(t->cols[t->keycols[k]].name);

		appendStringInfo(buf, "%s%s.%s = %s.%s", k ? " AND " : "", a, name, b, name);
	}
}

/*
 * "x.c1 IS NOT DISTINCT FROM r.c1 AND ..." (or with op "IS DISTINCT FROM"
 * and sep " OR ") for the present non-key columns; false if there are none.
 */
static bool
append_value_compare(StringInfo buf, UpsertTarget *t, Bitmapset *present,
					 const char *a, const char *op, const char *b, const char *sep)
{
	bool		first = true;
	int			c = -1;

	while ((c = bms_next_member(present, c)) >= 0)
	{
		UpsertColumn *col = &t->cols[c];

		if (col->key_pos >= 0)
			continue;
		appendStringInfoString(buf, first ? "" : sep);
		append_comparable(buf, col, a);
		appendStringInfo(buf, " %s ", op);
		append_comparable(buf, col, b);
		first = false;
	}
	return !first;
}

/* "ON CONFLICT (keys) DO UPDATE SET ... WHERE <changed>" or "DO NOTHING" */
static void
append_conflict_clause(StringInfo buf, UpsertTarget *t, Bitmapset *present)
{
	StringInfoData changed;
	bool		first = true;
	int			c = -1;

	appendStringInfoString(buf, " ON CONFLICT (");
	for (int k = 0; k < t->nkeys; k++)
		appendStringInfo(buf, "%s%s", k ? ", " : "",
						 quote_identifier(t->cols[t->keycols[k]].name));
	appendStringInfoString(buf, ") DO ");

	initStringInfo(&changed);
	if (!append_value_compare(&changed, t, present, "t", "IS DISTINCT FROM", "EXCLUDED", " OR "))
	{
		appendStringInfoString(buf, "NOTHING");
		return;
	}
	appendStringInfoString(buf, "UPDATE SET ");
	while ((c = bms_next_member(present, c)) >= 0)
	{
		const char *name = quote_identifier(t->cols[c].name);

		if (t->cols[c].key_pos >= 0 || (t->touch && strcmp(name, t->touch) == 0))
			continue;
		appendStringInfo(buf, "%s%s = EXCLUDED.%s", first ? "" : ", ", name, name);
		first = false;
	}
	if (t->touch)
		appendStringInfo(buf, "%s%s = now()", first ? "" : ", ", t->touch);
	appendStringInfo(buf, " WHERE %s", changed.data);
}

/*
 * The statement for one set of present columns.  A partitioned table has
 * no xmax to return, so there the probe also tells whether the key existed
 * (state: NULL absent, 1 changed, 2 equal) and the inserted rows are found
 * by joining the returned keys back to the batch.
 */
static char *
build_statement(UpsertTarget *t, Bitmapset *present)
{
	StringInfoData sql;

	initStringInfo(&sql);
	if (!t->partitioned)
	{
		appendStringInfo(&sql, "INSERT INTO %s AS t (", t->qualname);
		append_column_list(&sql, t, present, "", true, true);
		appendStringInfoString(&sql, ") SELECT ");
		append_column_list(&sql, t, present, "r.", true, true);
		appendStringInfo(&sql, " FROM pg_catalog.unnest($1) AS r WHERE NOT EXISTS (SELECT FROM %s AS x WHERE ",
						 t->qualname);
		append_key_match(&sql, t, "x", "r");
		appendStringInfoString(&sql, " AND ");
		if (!append_value_compare(&sql, t, present, "x", "IS NOT DISTINCT FROM", "r", " AND "))
			appendStringInfoString(&sql, "true");
		appendStringInfoString(&sql, " OFFSET 0)");
		append_conflict_clause(&sql, t, present);
		appendStringInfoString(&sql, " RETURNING t.xmax = 0");
		return sql.data;
	}

	appendStringInfoString(&sql, "WITH src AS MATERIALIZED (SELECT r.*, (SELECT CASE WHEN ");
	if (!append_value_compare(&sql, t, present, "x", "IS NOT DISTINCT FROM", "r", " AND "))
		appendStringInfoString(&sql, "true");
	appendStringInfo(&sql, " THEN 2 ELSE 1 END FROM %s AS x WHERE ", t->qualname);
	append_key_match(&sql, t, "x", "r");
	appendStringInfo(&sql, " OFFSET 0) AS \"synchub state\" FROM pg_catalog.unnest($1) AS r), "
					 "w AS (INSERT INTO %s AS t (", t->qualname);
	append_column_list(&sql, t, present, "", true, true);
	appendStringInfoString(&sql, ") SELECT ");
	append_column_list(&sql, t, present, "r.", true, true);
	appendStringInfoString(&sql, " FROM src AS r WHERE r.\"synchub state\" IS DISTINCT FROM 2");
	append_conflict_clause(&sql, t, present);
	appendStringInfoString(&sql, " RETURNING ");
	append_column_list(&sql, t, present, "t.", true, false);
	appendStringInfoString(&sql, ") SELECT r.\"synchub state\" IS NULL FROM w JOIN src AS r ON ");
	append_key_match(&sql, t, "w", "r");
	return sql.data;
}

/*
 * The executor's privilege check of the INSERT (INSERT, UPDATE and SELECT
 * on the columns it writes and reads), run before any batch.
 */
static void
check_privileges(SPIPlanPtr plan)
{
	ListCell   *lc;

	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *ps = (CachedPlanSource *) lfirst(lc);
		ListCell   *lq;

		foreach(lq, ps->query_list)
		{
			Query	   *q = lfirst_node(Query, lq);

#if PG_VERSION_NUM >= 160000
			ExecCheckPermissions(q->rtable, q->rteperminfos, true);
#else
			ExecCheckRTPerms(q->rtable, true);
#endif
		}
	}
}

/*
 * Builds the generic plan now, with sequential and bitmap scans off and
 * only the key's unique index in sight (upsert_planner.c): the NOT EXISTS
 * probe runs once per record and must be a plain index scan on that index,
 * whatever the statistics of a table that may just have been loaded say.
 * The settings are restored at once; they do not reach triggers or
 * anything else the statement runs.
 */
static void
build_generic_plan(UpsertTarget *t, SPIPlanPtr plan)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	upsert_planner_set(t);
	PG_TRY();
	{
		CachedPlan *cplan = SPI_plan_get_cached_plan(plan);

		if (cplan != NULL)
			ReleaseCachedPlan(cplan, NULL);
	}
	PG_FINALLY();
	{
		upsert_planner_set(NULL);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nest);
}

static UpsertPlan *
plan_for(UpsertRun *run, Bitmapset *present)
{
	ListCell   *lc;
	UpsertPlan *p;
	MemoryContext old;
	Oid			argtype = run->target.rowarraytype;

	foreach(lc, run->plans)
	{
		p = (UpsertPlan *) lfirst(lc);
		if (bms_equal(p->present, present))
			return p;
	}

	old = MemoryContextSwitchTo(run->call_cxt);
	p = palloc(sizeof(UpsertPlan));
	p->present = bms_copy(present);
	/*
	 * A custom plan would copy the whole batch array into the plan at every
	 * execution; the generic plan is the same for any batch.
	 */
	p->plan = SPI_prepare_cursor(build_statement(&run->target, present), 1, &argtype,
								 CURSOR_OPT_GENERIC_PLAN);
	if (p->plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	check_privileges(p->plan);
	build_generic_plan(&run->target, p->plan);
	run->plans = lappend(run->plans, p);
	MemoryContextSwitchTo(old);
	return p;
}

/*---- execution ----*/

/* Can one record cause this error, so that rejecting it lets the rest pass? */
static bool
is_record_error(ErrorData *edata)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
		category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		category == ERRCODE_WITH_CHECK_OPTION_VIOLATION ||
		category == ERRCODE_PLPGSQL_ERROR ||
		edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE;
}

/*
 * Runs fn(run, item, arg) for item = 0 .. n-1 inside subtransactions: one
 * for the whole run when nothing fails.  When an item raises an error a
 * record can cause, the subtransaction is rolled back, the record being
 * processed (run->current) is rejected and the loop resumes after it.
 */
void
upsert_guarded_loop(UpsertRun *run, int n, UpsertStep fn, void *arg)
{
	volatile int next = 0;

	while (next < n)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		ErrorData  *edata = NULL;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			for (; next < n; next++)
			{
				CHECK_FOR_INTERRUPTS();
				fn(run, next, arg);
			}
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
		}
		PG_END_TRY();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		if (edata != NULL)
		{
			if (!is_record_error(edata))
				ReThrowError(edata);
			upsert_reject(run, run->current, edata);
			FreeErrorData(edata);
			next++;
		}
	}
}

static void
exec_piece(UpsertRun *run, UpsertPlan *plan, UpsertRow **rows, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *edata = NULL;
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Datum		arg;
	volatile int64 inserted = 0;
	volatile int64 returned = 0;

	CHECK_FOR_INTERRUPTS();
	for (int i = 0; i < n; i++)
		elems[i] = rows[i]->tuple;
	arg = PointerGetDatum(construct_array(elems, n, run->target.tupdesc->tdtypeid,
										  -1, false, TYPALIGN_DOUBLE));

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			rc;

		upsert_planner_set(&run->target);	/* a replan sees the key's index only */
		rc = SPI_execute_plan(plan->plan, &arg, NULL, false, 0);
		upsert_planner_set(NULL);
		if (rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		returned = SPI_processed;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull && DatumGetBool(d))
				inserted++;
		}
		SPI_freetuptable(SPI_tuptable);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		upsert_planner_set(NULL);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	pfree(DatumGetPointer(arg));
	pfree(elems);

	if (edata == NULL)
	{
		run->counts->inserted += inserted;
		run->counts->updated += returned - inserted;
		run->counts->unchanged += n - returned;
		return;
	}
	if (!is_record_error(edata))
		ReThrowError(edata);
	if (n == 1)
	{
		upsert_reject(run, rows[0]->index, edata);
		FreeErrorData(edata);
		return;
	}
	FreeErrorData(edata);
	exec_piece(run, plan, rows, n / 2);
	exec_piece(run, plan, rows + n / 2, n - n / 2);
}

/*
 * Writes rows (distinct keys, in key order), one statement per set of
 * present columns.
 */
void
upsert_exec_rows(UpsertRun *run, UpsertRow *rows, int nrows)
{
	UpsertRow **group = palloc(sizeof(UpsertRow *) * Max(nrows, 1));
	bool	   *done = palloc0(sizeof(bool) * Max(nrows, 1));

	for (int first = 0; first < nrows; first++)
	{
		Bitmapset  *present;
		int			n = 0;

		if (done[first])
			continue;
		present = rows[first].present;
		for (int i = first; i < nrows; i++)
		{
			if (!done[i] && (rows[i].present == present ||
							 bms_equal(rows[i].present, present)))
			{
				group[n++] = &rows[i];
				done[i] = true;
			}
		}
		exec_piece(run, plan_for(run, present), group, n);
	}
	pfree(group);
	pfree(done);
}
