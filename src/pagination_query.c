/*-------------------------------------------------------------------------
 * pagination_query.c
 *    Builds the SQL of one page: filter, keyset predicate, order, limit.
 *
 *    SELECT pg_catalog.to_jsonb(p.*), p.k1, ..., p.kn FROM rel p
 *     WHERE true AND <filter> AND <keyset> ORDER BY p.k1 ..., p.kn ... LIMIT n
 *
 * Identifiers come from the catalog and are quoted; operators are those of
 * each type's default btree operator class, written OPERATOR(schema.op) so
 * that search_path cannot change them; every value is a parameter.
 * Parameters are numbered: non-NULL filter values in filter order, then
 * non-NULL key values in key order.  The limit (page_size + 1) is a literal:
 * with a parameter there, the plan cache would find the generic plan's
 * estimate poor and plan every call anew.
 *
 * Keyset predicate.  A backward page (PAGE_BEFORE) reverses every column's
 * direction and NULLS placement; the predicate then always reads "rows
 * after the key" in the order of the query.  When every column is NOT NULL
 * and all go the same way it is one row comparison, (a, b) > ($1, $2),
 * which a btree index serves as its scan bound.  Otherwise it is the
 * expansion
 *
 *    after(a) OR (a = $1 AND after(b)) OR (a = $1 AND b = $2 AND after(c)) ...
 *
 * where after(x) for a value v is x > v (x < v descending), plus
 * "OR x IS NULL" when NULLs sort after the values; for a NULL key value it
 * is "x IS NOT NULL" when NULLs sort first and false (branch dropped) when
 * they sort last; equality with a NULL key value is "x IS NULL".  With
 * several columns the expansion is preceded by a bound on the first column
 * alone (a >= $1, a <= $1 descending, or a IS NULL), which is implied by
 * the expansion but lets an index on the order start its scan at the key
 * instead of filtering from the beginning.  For a nullable first column
 * whose NULLs sort after a non-NULL key the rows after are "greater, or
 * NULL", which no single index range holds: that page is the union of the
 * two ranges, each index-ordered and limited (pagination_build_query).
 * PAGE_FROM adds the branch "all columns equal".
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pagination.h"

/* OPERATOR(schema.name) for an operator oid. */
static void
append_operator(StringInfo buf, Oid opr)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator form;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	form = (Form_pg_operator) GETSTRUCT(tup);
	appendStringInfo(buf, " OPERATOR(%s.%s) ",
					 quote_identifier(get_namespace_name(form->oprnamespace)),
					 NameStr(form->oprname));
	ReleaseSysCache(tup);
}

static Oid
operator_namespace(Oid opr)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	nsp = ((Form_pg_operator) GETSTRUCT(tup))->oprnamespace;
	ReleaseSysCache(tup);
	return nsp;
}

static void
append_column(StringInfo buf, const char *name)
{
	appendStringInfo(buf, "p.%s", quote_identifier(name));
}

/* The column in the query's order: a backward page reverses it. */
static void
effective(const PageColumn *col, PageDirection dir, bool *desc, bool *nulls_first)
{
	*desc = (dir == PAGE_BEFORE) ? !col->desc : col->desc;
	*nulls_first = (dir == PAGE_BEFORE) ? !col->nulls_first : col->nulls_first;
}

static void
append_equal(StringInfo buf, const PageColumn *col, bool isnull, int param)
{
	append_column(buf, col->name);
	if (isnull)
		appendStringInfoString(buf, " IS NULL");
	else
	{
		append_operator(buf, col->eq_opr);
		appendStringInfo(buf, "$%d", param);
	}
}

/*
 * after(x) as described above; false when no row comes after.  values_only
 * leaves out the NULLs that sort after a non-NULL key (the split query
 * fetches them separately).
 */
static bool
append_after(StringInfo buf, const PageColumn *col, PageDirection dir,
			 bool isnull, int param, bool values_only)
{
	bool		desc;
	bool		nulls_first;
	bool		or_null;

	effective(col, dir, &desc, &nulls_first);
	if (isnull)
	{
		if (!nulls_first || col->notnull)
			return false;
		append_column(buf, col->name);
		appendStringInfoString(buf, " IS NOT NULL");
		return true;
	}
	or_null = !col->notnull && !nulls_first && !values_only;
	if (or_null)
		appendStringInfoChar(buf, '(');
	append_column(buf, col->name);
	append_operator(buf, desc ? col->lt_opr : col->gt_opr);
	appendStringInfo(buf, "$%d", param);
	if (or_null)
	{
		appendStringInfoString(buf, " OR ");
		append_column(buf, col->name);
		appendStringInfoString(buf, " IS NULL)");
	}
	return true;
}

/*
 * The bound "at or after the key" on one column, when it is simple (or
 * when values_only leaves out the NULLs after a non-NULL key).
 */
static bool
append_bound(StringInfo buf, const PageColumn *col, PageDirection dir,
			 bool isnull, int param, bool values_only)
{
	bool		desc;
	bool		nulls_first;

	effective(col, dir, &desc, &nulls_first);
	if (isnull)
	{
		if (nulls_first)
			return false;
		append_column(buf, col->name);
		appendStringInfoString(buf, " IS NULL");
		return true;
	}
	if (!col->notnull && !nulls_first && !values_only)
		return false;
	append_column(buf, col->name);
	append_operator(buf, desc ? col->le_opr : col->ge_opr);
	appendStringInfo(buf, "$%d", param);
	return true;
}

/* One row comparison serves when all columns are NOT NULL and agree. */
static bool
row_comparable(const PageOrder *order, const bool *keynulls)
{
	int			i;

	for (i = 0; i < order->ncols; i++)
	{
		const PageColumn *c = &order->cols[i];

		if (!c->notnull || keynulls[i] || c->desc != order->cols[0].desc ||
			operator_namespace(c->lt_opr) != operator_namespace(order->cols[0].lt_opr))
			return false;
	}
	return true;
}

static void
append_row_comparison(StringInfo buf, const PageOrder *order, PageDirection dir,
					  const int *params)
{
	bool		desc;
	bool		nulls_first;
	const char *op;
	int			i;

	effective(&order->cols[0], dir, &desc, &nulls_first);
	if (dir == PAGE_FROM)
		op = desc ? "<=" : ">=";
	else
		op = desc ? "<" : ">";
	appendStringInfoChar(buf, '(');
	for (i = 0; i < order->ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		append_column(buf, order->cols[i].name);
	}
	appendStringInfo(buf, ") OPERATOR(%s.%s) (",
					 quote_identifier(get_namespace_name(operator_namespace(order->cols[0].lt_opr))),
					 op);
	for (i = 0; i < order->ncols; i++)
		appendStringInfo(buf, "%s$%d", i > 0 ? ", " : "", params[i]);
	appendStringInfoChar(buf, ')');
}

static void
append_expansion(StringInfo buf, const PageOrder *order, PageDirection dir,
				 const bool *keynulls, const int *params, bool values_only)
{
	int			nbranches = 0;
	int			i;
	int			j;

	if (order->ncols > 1)
	{
		StringInfoData bound;

		initStringInfo(&bound);
		if (append_bound(&bound, &order->cols[0], dir, keynulls[0], params[0], values_only))
			appendStringInfo(buf, "%s AND ", bound.data);
	}
	appendStringInfoChar(buf, '(');
	for (i = 0; i <= order->ncols; i++)
	{
		StringInfoData branch;

		if (i == order->ncols && dir != PAGE_FROM)
			break;
		initStringInfo(&branch);
		for (j = 0; j < i; j++)
		{
			append_equal(&branch, &order->cols[j], keynulls[j], params[j]);
			appendStringInfoString(&branch, " AND ");
		}
		if (i == order->ncols)
			branch.len -= 5;	/* drop the last " AND " */
		else if (!append_after(&branch, &order->cols[i], dir, keynulls[i], params[i],
							   values_only && i == 0))
			continue;
		branch.data[branch.len] = '\0';
		appendStringInfo(buf, "%s(%s)", nbranches++ > 0 ? " OR " : "", branch.data);
	}
	if (nbranches == 0)
		appendStringInfoString(buf, "false");
	appendStringInfoChar(buf, ')');
}

/*
 * True when the first column is nullable, its NULLs sort after the values
 * and the key's value is not NULL: the rows after the key are "greater, or
 * NULL", which no single index range holds.
 */
static bool
needs_split(const PageOrder *order, PageDirection dir, const bool *keynulls)
{
	bool		desc;
	bool		nulls_first;

	effective(&order->cols[0], dir, &desc, &nulls_first);
	return !order->cols[0].notnull && !nulls_first && !keynulls[0];
}

static void
append_order(StringInfo buf, const PageOrder *order, PageDirection dir, bool positional)
{
	int			i;

	appendStringInfoString(buf, " ORDER BY ");
	for (i = 0; i < order->ncols; i++)
	{
		bool		desc;
		bool		nulls_first;

		effective(&order->cols[i], dir, &desc, &nulls_first);
		if (i > 0)
			appendStringInfoString(buf, ", ");
		if (positional)
			appendStringInfo(buf, "u.k%d", i + 1);
		else
			append_column(buf, order->cols[i].name);
		appendStringInfo(buf, " %s NULLS %s", desc ? "DESC" : "ASC",
						 nulls_first ? "FIRST" : "LAST");
	}
}

/* SELECT ... FROM rel p WHERE <filters>, leaving the WHERE clause open. */
static void
append_select(StringInfo buf, Relation rel, const PageOrder *order,
			  const PageFilter *filters, int nfilters)
{
	int			param = 0;
	int			i;

	appendStringInfoString(buf, "SELECT pg_catalog.to_jsonb(p.*)");
	for (i = 0; i < order->ncols; i++)
	{
		appendStringInfoString(buf, ", ");
		append_column(buf, order->cols[i].name);
	}
	appendStringInfo(buf, " FROM %s p WHERE true",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	for (i = 0; i < nfilters; i++)
	{
		PageColumn	col = {0};

		col.name = filters[i].name;
		col.eq_opr = filters[i].eq_opr;
		appendStringInfoString(buf, " AND ");
		append_equal(buf, &col, filters[i].isnull, filters[i].isnull ? 0 : ++param);
	}
}

/*
 * The query text of a page of at most limit rows.  keynulls is NULL for
 * the first page (no cursor); argtypes (room for filters + keys) and *nargs
 * receive the parameter types in the order described above.
 *
 * When the first column's NULLs sort after a non-NULL key (needs_split),
 * the page is the union of two index-ordered queries, the non-NULL values
 * after the key and the NULLs, each limited, then ordered and limited
 * again: at most twice the page is sorted, whatever the depth.
 */
char *
pagination_build_query(Relation rel, const PageOrder *order,
					   const PageFilter *filters, int nfilters,
					   PageDirection dir, const bool *keynulls, int limit,
					   Oid *argtypes, int *nargs)
{
	StringInfoData buf;
	int			params[PAGINATION_MAX_KEYS];
	int			i;

	*nargs = 0;
	for (i = 0; i < nfilters; i++)
		if (!filters[i].isnull)
			argtypes[(*nargs)++] = filters[i].type;
	for (i = 0; keynulls != NULL && i < order->ncols; i++)
	{
		params[i] = 0;
		if (!keynulls[i])
		{
			argtypes[(*nargs)++] = order->cols[i].type;
			params[i] = *nargs;
		}
	}

	initStringInfo(&buf);
	if (keynulls == NULL)
	{
		append_select(&buf, rel, order, filters, nfilters);
		append_order(&buf, order, dir, false);
	}
	else if (!needs_split(order, dir, keynulls))
	{
		append_select(&buf, rel, order, filters, nfilters);
		appendStringInfoString(&buf, " AND ");
		if (row_comparable(order, keynulls))
			append_row_comparison(&buf, order, dir, params);
		else
			append_expansion(&buf, order, dir, keynulls, params, false);
		append_order(&buf, order, dir, false);
	}
	else
	{
		appendStringInfoString(&buf, "SELECT * FROM ((");
		append_select(&buf, rel, order, filters, nfilters);
		appendStringInfoString(&buf, " AND ");
		append_expansion(&buf, order, dir, keynulls, params, true);
		append_order(&buf, order, dir, false);
		appendStringInfo(&buf, " LIMIT %d) UNION ALL (", limit);
		append_select(&buf, rel, order, filters, nfilters);
		appendStringInfoString(&buf, " AND ");
		append_column(&buf, order->cols[0].name);
		appendStringInfoString(&buf, " IS NULL");
		append_order(&buf, order, dir, false);
		appendStringInfo(&buf, " LIMIT %d)) u(r", limit);
		for (i = 0; i < order->ncols; i++)
			appendStringInfo(&buf, ", k%d", i + 1);
		appendStringInfoChar(&buf, ')');
		append_order(&buf, order, dir, true);
	}
	appendStringInfo(&buf, " LIMIT %d", limit);
	return buf.data;
}
