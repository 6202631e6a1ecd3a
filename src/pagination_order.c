/*-------------------------------------------------------------------------
 * pagination_order.c
 *    Parses paginate()'s order_by and completes it into a unique order.
 *
 * order_by is a comma-separated list of
 *
 *    column [ASC | DESC] [NULLS FIRST | NULLS LAST]
 *
 * where column is an identifier spelled as in SQL: unquoted names are
 * folded to lower case, double-quoted names are taken as written.  Nothing
 * else is accepted (no expressions, operators, comments or semicolons): a
 * column is resolved in the relation's catalog entry and only its catalog
 * name reaches the generated query, quoted.
 *
 * For a NOT NULL column the NULLS option is normalized to the direction's
 * default (NULLS LAST for ASC, NULLS FIRST for DESC) so that a plain btree
 * index serves the order whatever the request spelled.
 *
 * The order must identify rows uniquely, or keyset pagination could skip
 * rows of equal keys.  For tables, partitioned tables and materialized
 * views the order is unique when it contains every column of the primary
 * key or of a valid, non-partial unique index on NOT NULL columns (on
 * any columns for a materialized view, which cannot declare NOT NULL);
 * otherwise the columns of the primary key (or, failing one, of the
 * narrowest such unique index) are appended, ascending.  A view has no
 * key the catalog can vouch for: its order_by is required and taken as
 * unique.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "catalog/pg_index.h"
#include "nodes/pg_list.h"
#include "parser/scansup.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "pagination.h"

/*---- tokenizer ----*/

typedef struct OrderScanner
{
	const char *input;
	const char *p;
} OrderScanner;

static void
skip_space(OrderScanner *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		s->p++;
}

static bool
ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool
ident_cont(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static void
syntax_error(OrderScanner *s, const char *expected)
{
	const char *found = *s->p ? s->p : "end of input";

	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("syntax error in order_by at position %d",
					(int) (s->p - s->input) + 1),
			 errdetail("Expected %s, found \"%.20s\".", expected, found),
			 errhint("order_by is a list of \"column [ASC | DESC] [NULLS FIRST | NULLS LAST]\" separated by commas.")));
}

/*
 * Reads an identifier (quoted or not) or returns NULL when none starts
 * here; sets *quoted.
 */
static char *
read_identifier(OrderScanner *s, bool *quoted)
{
	skip_space(s);
	*quoted = (*s->p == '"');
	if (*quoted)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		s->p++;
		for (;;)
		{
			if (*s->p == '\0')
				syntax_error(s, "a closing double quote");
			if (*s->p == '"')
			{
				if (s->p[1] != '"')
					break;
				s->p++;
			}
			appendStringInfoChar(&buf, *s->p++);
		}
		s->p++;
		if (buf.len == 0)
			syntax_error(s, "a column name");
		return buf.data;
	}
	if (ident_start((unsigned char) *s->p))
	{
		const char *start = s->p;

		while (ident_cont((unsigned char) *s->p))
			s->p++;
		return downcase_identifier(start, s->p - start, false, true);
	}
	return NULL;
}

/* Reads an unquoted keyword; NULL when something else comes. */
static char *
read_keyword(OrderScanner *s)
{
	bool		quoted;
	const char *start;
	char	   *word;

	skip_space(s);
	start = s->p;
	if (*s->p == '"')
		return NULL;
	word = read_identifier(s, &quoted);
	if (word == NULL)
		s->p = start;
	return word;
}

/*---- columns ----*/

static Oid
btree_member(TypeCacheEntry *tc, int16 strategy)
{
	return get_opfamily_member(tc->btree_opf, tc->btree_opintype,
							   tc->btree_opintype, strategy);
}

/* Fills a PageColumn for attribute name of rel, or raises 42703. */
static void
resolve_column(Relation rel, const char *name, PageColumn *col)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);
	Form_pg_attribute att;
	TypeCacheEntry *tc;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel))));
	att = TupleDescAttr(desc, attnum - 1);
	col->attnum = attnum;
	col->name = pstrdup(NameStr(att->attname));
	col->type = att->atttypid;
	col->typmod = att->atttypmod;
	col->notnull = att->attnotnull;

	tc = lookup_type_cache(getBaseType(att->atttypid),
						   TYPECACHE_BTREE_OPFAMILY | TYPECACHE_EQ_OPR |
						   TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
	col->lt_opr = tc->lt_opr;
	col->gt_opr = tc->gt_opr;
	col->eq_opr = tc->eq_opr;
	if (OidIsValid(tc->btree_opf))
	{
		col->le_opr = btree_member(tc, BTLessEqualStrategyNumber);
		col->ge_opr = btree_member(tc, BTGreaterEqualStrategyNumber);
	}
	if (!OidIsValid(tc->btree_opf) || !OidIsValid(col->lt_opr) ||
		!OidIsValid(col->gt_opr) || !OidIsValid(col->eq_opr) ||
		!OidIsValid(col->le_opr) || !OidIsValid(col->ge_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("column \"%s\" cannot be used in order_by", col->name),
				 errdetail("Type %s has no default btree operator class.",
						   format_type_be(col->type))));
}

static void
add_column(Relation rel, PageOrder *order, const char *name, bool desc,
		   bool nulls_first, bool explicit_nulls)
{
	PageColumn *col;
	int			i;

	if (order->ncols >= PAGINATION_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_COLUMNS),
				 errmsg("order_by cannot have more than %d columns",
						PAGINATION_MAX_KEYS)));
	col = &order->cols[order->ncols];
	resolve_column(rel, name, col);
	for (i = 0; i < order->ncols; i++)
		if (order->cols[i].attnum == col->attnum)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" appears more than once in order_by",
							col->name)));
	col->desc = desc;
	col->nulls_first = (explicit_nulls && !col->notnull) ? nulls_first : desc;
	order->ncols++;
}

static void
parse_list(Relation rel, const char *order_by, PageOrder *order)
{
	OrderScanner s = {order_by, order_by};

	for (;;)
	{
		bool		quoted;
		char	   *name = read_identifier(&s, &quoted);
		char	   *word;
		bool		desc = false;
		bool		nulls_first = false;
		bool		explicit_nulls = false;

		if (name == NULL)
			syntax_error(&s, "a column name");
		word = read_keyword(&s);
		if (word && (strcmp(word, "asc") == 0 || strcmp(word, "desc") == 0))
		{
			desc = (word[0] == 'd');
			word = read_keyword(&s);
		}
		if (word && strcmp(word, "nulls") == 0)
		{
			const char *at = s.p;

			word = read_keyword(&s);
			if (word == NULL || (strcmp(word, "first") != 0 && strcmp(word, "last") != 0))
			{
				s.p = at;
				skip_space(&s);
				syntax_error(&s, "FIRST or LAST after NULLS");
			}
			nulls_first = (word[0] == 'f');
			explicit_nulls = true;
			word = read_keyword(&s);
		}
		if (word != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("invalid sort direction \"%s\" in order_by", word),
					 errhint("Use ASC or DESC, optionally followed by NULLS FIRST or NULLS LAST.")));
		skip_space(&s);
		if (*s.p != '\0' && *s.p != ',')
			syntax_error(&s, "a comma or the end of order_by");
		add_column(rel, order, name, desc, nulls_first, explicit_nulls);
		if (*s.p == '\0')
			break;
		s.p++;
	}
}

/*---- uniqueness ----*/

/*
 * Key columns of a valid, non-partial, plain-column unique index whose
 * columns are all NOT NULL (any columns for a materialized view); 0 when
 * the index is no such key.
 */
static int
unique_key_columns(Relation rel, Oid indexoid, AttrNumber *attnums, bool *primary)
{
	HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	Form_pg_index index;
	int			n = 0;
	int			i;

	if (!HeapTupleIsValid(tup))
		return 0;
	index = (Form_pg_index) GETSTRUCT(tup);
	if (index->indisunique && index->indisvalid && index->indislive &&
		heap_attisnull(tup, Anum_pg_index_indpred, NULL) &&
		heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
	{
		for (i = 0; i < index->indnkeyatts; i++)
		{
			AttrNumber	attnum = index->indkey.values[i];

			if (attnum <= 0 || (!TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attnotnull &&
								rel->rd_rel->relkind != RELKIND_MATVIEW))
			{
				n = 0;
				break;
			}
			attnums[n++] = attnum;
		}
		*primary = index->indisprimary;
	}
	ReleaseSysCache(tup);
	return n;
}

static bool
order_has(const PageOrder *order, AttrNumber attnum)
{
	int			i;

	for (i = 0; i < order->ncols; i++)
		if (order->cols[i].attnum == attnum)
			return true;
	return false;
}

/*
 * Makes the order unique; false when the relation has no key to make it
 * so (and the order was not unique already).
 */
static bool
complete_order(Relation rel, PageOrder *order)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	AttrNumber	best[INDEX_MAX_KEYS];
	int			nbest = 0;
	bool		best_primary = false;
	int			i;

	foreach(lc, indexes)
	{
		AttrNumber	attnums[INDEX_MAX_KEYS];
		bool		primary = false;
		int			n = unique_key_columns(rel, lfirst_oid(lc), attnums, &primary);
		bool		covered = (n > 0);

		for (i = 0; i < n && covered; i++)
			covered = order_has(order, attnums[i]);
		if (covered)
			return true;
		/* primary key first, then the narrowest; list order breaks ties */
		if (n > 0 && (nbest == 0 || (primary && !best_primary) ||
					  (primary == best_primary && n < nbest)))
		{
			memcpy(best, attnums, n * sizeof(AttrNumber));
			nbest = n;
			best_primary = primary;
		}
	}
	if (nbest == 0)
		return false;
	for (i = 0; i < nbest; i++)
		if (!order_has(order, best[i]))
			add_column(rel, order,
					   NameStr(TupleDescAttr(RelationGetDescr(rel), best[i] - 1)->attname),
					   false, false, false);
	return true;
}

/*
 * Parses order_by (NULL: only the key) for rel and completes it into a
 * unique order.
 */
void
pagination_parse_order(Relation rel, const char *order_by, PageOrder *order)
{
	bool		view = (rel->rd_rel->relkind == RELKIND_VIEW);

	order->ncols = 0;
	if (order_by != NULL)
		parse_list(rel, order_by, order);
	else if (view)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order_by is required to paginate view \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Give an order whose columns identify each row of the view, for example its underlying table's primary key.")));
	if (!view && !complete_order(rel, order))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation \"%s\" has no unique key to order by",
						RelationGetRelationName(rel)),
				 errdetail("Keyset pagination needs an order that identifies each row."),
				 errhint("Add a primary key, or a unique index on NOT NULL columns, to the relation.")));
}
