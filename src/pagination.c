/*-------------------------------------------------------------------------
 * pagination.c
 *    synchub.paginate(): keyset pagination of a table or view into jsonb.
 *
 * A request is validated (page_size, relation kind, order_by, filter),
 * its cursor checked and decoded (cursor.c), and one query built for it
 * (pagination_query.c) that fetches page_size + 1 rows in the order of
 * travel: the extra row only tells whether there is more.  A backward page
 * is fetched in reverse order and turned around.
 *
 * The query runs through SPI as the caller, so privileges and row-level
 * security apply.  Plans are kept per session, keyed by the query text and
 * parameter types (which determine each other), so every distinct shape
 * (relation, order, filter columns, direction, NULL pattern of the key) is
 * planned once; the plan cache revalidates them after DDL or a change of
 * role.  At most PLAN_CACHE_SIZE plans are kept; when full, all are freed.
 *
 * A cursor is bound to "relation oid | complete order | filter": the order
 * lists each column's number, type, direction and NULLS placement; the
 * filter is its canonical jsonb text.  A renamed relation keeps its
 * cursors; a dropped and re-created one does not.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "cursor.h"
#include "pagination.h"

#define PLAN_CACHE_SIZE 64

typedef struct CachedPagePlan
{
	uint32		hash;
	char	   *key;			/* query text and argument types */
	SPIPlanPtr	plan;
} CachedPagePlan;

static CachedPagePlan plan_cache[PLAN_CACHE_SIZE];
static int	plan_cache_used = 0;

/*---- arguments ----*/

static Relation
open_relation(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);
	char		kind;

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	kind = rel->rd_rel->relkind;
	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE &&
		kind != RELKIND_VIEW && kind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot paginate \"%s\"", RelationGetRelationName(rel)),
				 errdetail("Only tables, partitioned tables, views and materialized views can be paginated.")));
	return rel;
}

/* The text a JSON filter value stands for, as input to the column's type. */
static char *
filter_value_text(JsonbValue *v, Oid type)
{
	Oid			base = getBaseType(type);
	bool		json = (base == JSONBOID || base == JSONOID);
	StringInfoData buf;

	switch (v->type)
	{
		case jbvString:
			if (!json)
				return pnstrdup(v->val.string.val, v->val.string.len);
			initStringInfo(&buf);
			escape_json(&buf, pnstrdup(v->val.string.val, v->val.string.len));
			return buf.data;
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;				/* keep compiler quiet */
}

/* Column = value equalities of filter (NULL or {} for none). */
static int
parse_filter(Relation rel, Jsonb *filter, PageFilter **out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	PageFilter *filters;
	int			n = 0;

	*out = NULL;
	if (filter == NULL)
		return 0;
	if (!JB_ROOT_IS_OBJECT(filter) || JB_ROOT_IS_SCALAR(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter must be a JSON object"),
				 errdetail("A filter is an object of column = value equalities, for example {\"integration_id\": 42}.")));
	filters = palloc0(sizeof(PageFilter) * Max(JB_ROOT_COUNT(filter), 1));
	it = JsonbIteratorInit(&filter->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		PageFilter *f;
		char	   *name;
		Form_pg_attribute att;
		TypeCacheEntry *tc;
		Oid			infunc;
		Oid			ioparam;

		if (tok != WJB_KEY)
			continue;
		f = &filters[n++];
		name = pnstrdup(v.val.string.val, v.val.string.len);
		f->attnum = get_attnum(RelationGetRelid(rel), name);
		if (f->attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(rel)),
					 errdetail("The keys of filter are column names.")));
		att = TupleDescAttr(RelationGetDescr(rel), f->attnum - 1);
		f->name = pstrdup(NameStr(att->attname));
		f->type = att->atttypid;
		tc = lookup_type_cache(getBaseType(f->type), TYPECACHE_EQ_OPR);
		f->eq_opr = tc->eq_opr;
		if (!OidIsValid(f->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("column \"%s\" cannot be used in filter", f->name),
					 errdetail("Type %s has no equality operator.",
							   format_type_be(f->type))));

		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		f->isnull = (v.type == jbvNull);
		if (f->isnull)
			continue;
		getTypeInputInfo(f->type, &infunc, &ioparam);
		f->value = OidInputFunctionCall(infunc, filter_value_text(&v, f->type),
										ioparam, att->atttypmod);
	}
	*out = filters;
	return n;
}

/* Describes what a cursor is bound to; see the file header. */
static void
bind_request(Relation rel, const PageOrder *order, Jsonb *filter, uint8 *binding)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%u|", RelationGetRelid(rel));
	for (i = 0; i < order->ncols; i++)
		appendStringInfo(&buf, "%d:%u:%c%c,", order->cols[i].attnum,
						 order->cols[i].type, order->cols[i].desc ? 'd' : 'a',
						 order->cols[i].nulls_first ? 'f' : 'l');
	appendStringInfoChar(&buf, '|');
	if (filter != NULL)
		appendStringInfoString(&buf, JsonbToCString(NULL, &filter->root, VARSIZE(filter)));
	cursor_binding(buf.data, binding);
}

/*---- plans ----*/

static SPIPlanPtr
page_plan(const char *sql, int nargs, Oid *argtypes)
{
	StringInfoData key;
	uint32		hash;
	SPIPlanPtr	plan;
	int			i;

	initStringInfo(&key);
	appendStringInfoString(&key, sql);
	for (i = 0; i < nargs; i++)
		appendStringInfo(&key, "|%u", argtypes[i]);
	hash = hash_bytes((const unsigned char *) key.data, key.len);
	for (i = 0; i < plan_cache_used; i++)
		if (plan_cache[i].hash == hash && strcmp(plan_cache[i].key, key.data) == 0)
			return plan_cache[i].plan;

	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare page query: %s", SPI_result_code_string(SPI_result));
	if (plan_cache_used == PLAN_CACHE_SIZE)
	{
		for (i = 0; i < plan_cache_used; i++)
		{
			SPI_freeplan(plan_cache[i].plan);
			pfree(plan_cache[i].key);
		}
		plan_cache_used = 0;
	}
	SPI_keepplan(plan);
	plan_cache[plan_cache_used].hash = hash;
	plan_cache[plan_cache_used].key = MemoryContextStrdup(TopMemoryContext, key.data);
	plan_cache[plan_cache_used].plan = plan;
	plan_cache_used++;
	return plan;
}

/*---- entry points ----*/

/*
 * Validates the arguments of paginate() (and paginate_explain(), which
 * takes the same), decodes the cursor and builds the query.  Connects SPI.
 */
static PageRequest *
prepare_request(FunctionCallInfo fcinfo)
{
	PageRequest *req = palloc0(sizeof(PageRequest));
	char	   *cursor = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *order_by = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	Jsonb	   *filter = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	PageFilter *filters;
	int			nfilters;
	int			i;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rel must not be null")));
	req->page_size = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	if (req->page_size < 1 || req->page_size > PAGINATION_MAX_PAGE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page_size must be between 1 and %d", PAGINATION_MAX_PAGE_SIZE)));
	if (filter != NULL && JB_ROOT_IS_OBJECT(filter) && !JB_ROOT_IS_SCALAR(filter) &&
		JB_ROOT_COUNT(filter) == 0)
		filter = NULL;

	req->rel = open_relation(PG_GETARG_OID(0));
	pagination_parse_order(req->rel, order_by, &req->order);
	nfilters = parse_filter(req->rel, filter, &filters);
	bind_request(req->rel, &req->order, filter, req->binding);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	req->dir = PAGE_AFTER;
	req->have_cursor = (cursor != NULL);
	if (cursor != NULL)
	{
		Oid			types[PAGINATION_MAX_KEYS];
		int32		typmods[PAGINATION_MAX_KEYS];

		for (i = 0; i < req->order.ncols; i++)
		{
			types[i] = req->order.cols[i].type;
			typmods[i] = req->order.cols[i].typmod;
		}
		req->dir = cursor_decode(cursor, req->binding, req->order.ncols, types,
								 typmods, req->keyvalues, req->keynulls);
	}

	req->argtypes = palloc(sizeof(Oid) * (nfilters + req->order.ncols));
	req->sql = pagination_build_query(req->rel, &req->order, filters, nfilters,
									  req->dir, cursor ? req->keynulls : NULL,
									  req->page_size + 1, req->argtypes, &req->nargs);
	req->args = palloc(sizeof(Datum) * req->nargs);
	req->nargs = 0;
	for (i = 0; i < nfilters; i++)
		if (!filters[i].isnull)
			req->args[req->nargs++] = filters[i].value;
	if (cursor != NULL)
		for (i = 0; i < req->order.ncols; i++)
			if (!req->keynulls[i])
				req->args[req->nargs++] = req->keyvalues[i];
	return req;
}

PG_FUNCTION_INFO_V1(synchub_paginate);
Datum
synchub_paginate(PG_FUNCTION_ARGS)
{
	PageRequest *req = prepare_request(fcinfo);
	Jsonb	   *result;

	result = pagination_fetch(req, page_plan(req->sql, req->nargs, req->argtypes));
	SPI_finish();
	relation_close(req->rel, NoLock);
	PG_RETURN_JSONB_P(result);
}

/*
 * The plan of the query paginate() would run for the same arguments, with
 * their values: EXPLAIN (COSTS OFF), one line per element.
 */
PG_FUNCTION_INFO_V1(synchub_paginate_explain);
Datum
synchub_paginate_explain(PG_FUNCTION_ARGS)
{
	PageRequest *req = prepare_request(fcinfo);
	char	   *sql = psprintf("EXPLAIN (COSTS OFF) %s", req->sql);
	Datum	   *lines;
	Datum		result;
	uint64		i;

	if (SPI_execute_with_args(sql, req->nargs, req->argtypes, req->args, NULL,
							  false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not explain page query");
	lines = palloc(sizeof(Datum) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		lines[i] = PointerGetDatum(cstring_to_text(SPI_getvalue(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1)));
	result = PointerGetDatum(construct_array(lines, (int) SPI_processed, TEXTOID, -1, false, TYPALIGN_INT));
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	relation_close(req->rel, NoLock);
	PG_RETURN_DATUM(result);
}
