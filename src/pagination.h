/*-------------------------------------------------------------------------
 * pagination.h
 *    Keyset pagination: the normalized sort order of a request and the
 *    query built from it, shared by pagination.c, pagination_order.c,
 *    pagination_query.c and pagination_result.c.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_PAGINATION_H
#define SYNCHUB_PAGINATION_H

#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "cursor.h"

/* Largest page_size paginate() accepts. */
#define PAGINATION_MAX_PAGE_SIZE	10000

/* Most columns an order may have (the width of a btree index). */
#define PAGINATION_MAX_KEYS			INDEX_MAX_KEYS

/* One column of the sort order, with what the predicate needs of its type. */
typedef struct PageColumn
{
	AttrNumber	attnum;
	const char *name;			/* attribute name, not quoted */
	Oid			type;
	int32		typmod;
	bool		notnull;		/* NOT NULL: no NULL branches needed */
	bool		desc;
	bool		nulls_first;
	Oid			lt_opr;			/* operators of the default btree opclass */
	Oid			le_opr;
	Oid			eq_opr;
	Oid			ge_opr;
	Oid			gt_opr;
} PageColumn;

/* The complete (unique) order: requested columns plus the tie-breaker. */
typedef struct PageOrder
{
	int			ncols;
	PageColumn	cols[PAGINATION_MAX_KEYS];
} PageOrder;

/* One filter equality: column = value, or column IS NULL. */
typedef struct PageFilter
{
	AttrNumber	attnum;
	const char *name;
	Oid			type;
	Oid			eq_opr;
	bool		isnull;
	Datum		value;
} PageFilter;

/* Where a page starts relative to the cursor's key. */
typedef enum PageDirection
{
	PAGE_AFTER = 0,				/* rows after the key, forwards */
	PAGE_BEFORE = 1,			/* rows before the key, backwards */
	PAGE_FROM = 2				/* the key's row and those after it, forwards */
} PageDirection;

/* One validated request, ready to run. */
typedef struct PageRequest
{
	Relation	rel;
	int			page_size;
	PageOrder	order;
	bool		have_cursor;
	PageDirection dir;
	Datum		keyvalues[PAGINATION_MAX_KEYS];
	bool		keynulls[PAGINATION_MAX_KEYS];
	uint8		binding[CURSOR_BINDING_LEN];
	char	   *sql;
	int			nargs;
	Oid		   *argtypes;
	Datum	   *args;
} PageRequest;

/* pagination_order.c */
extern void pagination_parse_order(Relation rel, const char *order_by,
								   PageOrder *order);

/* pagination_query.c */
extern char *pagination_build_query(Relation rel, const PageOrder *order,
									const PageFilter *filters, int nfilters,
									PageDirection dir, const bool *keynulls,
									int limit, Oid *argtypes, int *nargs);

/* pagination_result.c */
extern Jsonb *pagination_fetch(PageRequest *req, SPIPlanPtr plan);

#endif							/* SYNCHUB_PAGINATION_H */
