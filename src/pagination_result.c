/*-------------------------------------------------------------------------
 * pagination_result.c
 *    Runs the query of a page and writes its jsonb result:
 *    {"data": [rows], "has_more": bool, "next_cursor": text|null,
 *     "prev_cursor": text|null}
 *
 * The query's rows go to a DestReceiver of ours rather than to an SPI
 * tuple table: it keeps each row's jsonb and the key values of the first
 * and last rows in a scratch context that lives for the session and is
 * reset on every call (its first block is kept, so a page costs no
 * malloc/free round trip to the operating system), and it stops the
 * executor at the row after the page, which only says there is more.
 *
 * The result is written directly in jsonb's binary format, each row's
 * container copied as it is (pushJsonbValue would take every row apart
 * and sort its keys again).  The layout follows utils/jsonb.h: a
 * container is a header word (count and kind), one JEntry per child (keys
 * first, then values, for an object), then the children's data; every
 * JB_OFFSET_STRIDE'th JEntry holds the end offset of its child, the others
 * its length; a nested container starts on a 4-byte boundary (relative to
 * the start of the datum) and its padding counts in its length.  Object
 * keys are stored sorted by length, then bytes: "data", "has_more",
 * "next_cursor", "prev_cursor".
 *
 * What the cursors and has_more mean on each kind of page is documented
 * in docs/pagination.md.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "executor/spi.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "cursor.h"
#include "pagination.h"

/* Size of the scratch context's kept block. */
#define SCRATCH_BLOCK_SIZE (256 * 1024)

/* Free heap glibc may keep instead of returning it at once (see below). */
#define MALLOC_TRIM_THRESHOLD (4 * 1024 * 1024)

static MemoryContext page_scratch = NULL;

/* The rows of a page, in query order, and the keys of its ends. */
typedef struct PageReceiver
{
	DestReceiver pub;
	int			page_size;
	int			nkeys;
	int			n;
	bool		has_more;
	Jsonb	  **rows;
	Datum		first[PAGINATION_MAX_KEYS];
	bool		firstnull[PAGINATION_MAX_KEYS];
	Datum		last[PAGINATION_MAX_KEYS];
	bool		lastnull[PAGINATION_MAX_KEYS];
} PageReceiver;

/*---- receiver ----*/

static void
copy_keys(TupleTableSlot *slot, int nkeys, Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, i + 1);

		nulls[i] = slot->tts_isnull[i + 1];
		values[i] = nulls[i] ? (Datum) 0 :
			datumCopy(slot->tts_values[i + 1], att->attbyval, att->attlen);
	}
}

static bool
receive_row(TupleTableSlot *slot, DestReceiver *self)
{
	PageReceiver *r = (PageReceiver *) self;
	MemoryContext old;

	if (r->n == r->page_size)
	{
		r->has_more = true;
		return false;			/* stop: the page is complete */
	}
	slot_getallattrs(slot);
	if (slot->tts_isnull[0])
		elog(ERROR, "page row is null");
	old = MemoryContextSwitchTo(page_scratch);
	r->rows[r->n] = DatumGetJsonbPCopy(slot->tts_values[0]);
	if (r->n == 0)
		copy_keys(slot, r->nkeys, r->first, r->firstnull);
	copy_keys(slot, r->nkeys, r->last, r->lastnull);
	MemoryContextSwitchTo(old);
	r->n++;
	return true;
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
receiver_shutdown(DestReceiver *self)
{
}

static void
receiver_destroy(DestReceiver *self)
{
}

/*---- jsonb ----*/

/* A JEntry for child i of a container, given its type and its length. */
static JEntry
make_jentry(uint32 type, int i, uint32 len, uint32 *total)
{
	*total += len;
	if (*total > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("page is too large for a jsonb value"),
				 errhint("Use a smaller page_size.")));
	if (i % JB_OFFSET_STRIDE == 0)
		return type | JENTRY_HAS_OFF | *total;
	return type | len;
}

static void
pad_to_int(StringInfo buf)
{
	while (buf->len % 4 != 0)
		buf->data[buf->len++] = '\0';
}

static void
put_bytes(StringInfo buf, const void *data, int len)
{
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
}

static void
set_jentry(StringInfo buf, int offset, JEntry e)
{
	memcpy(buf->data + offset, &e, sizeof(JEntry));
}

static uint32
text_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* Appends an optional string as child i of the object. */
static void
put_text(StringInfo buf, int entries, int i, const char *s, uint32 *total)
{
	if (s)
		put_bytes(buf, s, strlen(s));
	set_jentry(buf, entries + i * sizeof(JEntry),
			   make_jentry(s ? JENTRY_ISSTRING : JENTRY_ISNULL, i, text_len(s), total));
}

/* Appends the array of the rows' containers; returns its length. */
static uint32
put_rows(StringInfo buf, PageReceiver *r, bool reverse)
{
	int			start = buf->len;
	uint32		header = (uint32) r->n | JB_FARRAY;
	int			entries;
	uint32		total = 0;
	int			i;

	pad_to_int(buf);
	put_bytes(buf, &header, sizeof(header));
	entries = buf->len;
	buf->len += r->n * sizeof(JEntry);
	for (i = 0; i < r->n; i++)
	{
		Jsonb	   *row = r->rows[reverse ? r->n - 1 - i : i];
		int			before = buf->len;

		pad_to_int(buf);
		put_bytes(buf, &row->root, VARSIZE(row) - VARHDRSZ);
		set_jentry(buf, entries + i * sizeof(JEntry),
				   make_jentry(JENTRY_ISCONTAINER, i, buf->len - before, &total));
	}
	return buf->len - start;
}

/*
 * The result object, allocated once at its final size where SPI returns
 * values (it outlives SPI_finish).
 */
static Jsonb *
write_result(PageReceiver *r, bool reverse, const char *next, const char *prev)
{
	static const char *const keys[] = {"data", "has_more", "next_cursor", "prev_cursor"};
	StringInfoData buf;
	uint32		header = 4 | JB_FOBJECT;
	Size		size;
	int			entries;
	uint32		total = 0;
	int			i;

	/* header, 8 JEntries, keys, cursors, array header and padding */
	size = VARHDRSZ + 4 + 8 * sizeof(JEntry) + 64 + text_len(next) + text_len(prev) + 8;
	for (i = 0; i < r->n; i++)
		size += sizeof(JEntry) + 3 + VARSIZE(r->rows[i]) - VARHDRSZ;
	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("page is too large for a jsonb value"),
				 errhint("Use a smaller page_size.")));
	buf.data = SPI_palloc(size);
	buf.maxlen = size;
	buf.len = VARHDRSZ;
	buf.cursor = 0;
	put_bytes(&buf, &header, sizeof(header));
	entries = buf.len;
	buf.len += 8 * sizeof(JEntry);

	for (i = 0; i < 4; i++)
	{
		put_bytes(&buf, keys[i], strlen(keys[i]));
		set_jentry(&buf, entries + i * sizeof(JEntry),
				   make_jentry(JENTRY_ISSTRING, i, strlen(keys[i]), &total));
	}
	set_jentry(&buf, entries + 4 * sizeof(JEntry),
			   make_jentry(JENTRY_ISCONTAINER, 4, put_rows(&buf, r, reverse), &total));
	set_jentry(&buf, entries + 5 * sizeof(JEntry),
			   make_jentry(r->has_more ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE, 5, 0, &total));
	put_text(&buf, entries, 6, next, &total);
	put_text(&buf, entries, 7, prev, &total);
	Assert(buf.len <= size);

	SET_VARSIZE(buf.data, buf.len);
	return (Jsonb *) buf.data;
}

/*---- entry ----*/

static char *
make_cursor(PageRequest *req, PageDirection dir, const Datum *values, const bool *nulls)
{
	Oid			types[PAGINATION_MAX_KEYS];
	int			i;

	for (i = 0; i < req->order.ncols; i++)
		types[i] = req->order.cols[i].type;
	return cursor_encode(dir, req->binding, req->order.ncols, types, values, nulls);
}

/*
 * Runs the page query of req (prepared as plan) and returns the page.  A
 * backward page arrives in reverse order: its first row in the query is
 * the last one shown.
 */
Jsonb *
pagination_fetch(PageRequest *req, SPIPlanPtr plan)
{
	PageReceiver r = {0};
	SPIExecuteOptions options = {0};
	ParamListInfo params = makeParamList(req->nargs);
	bool		backward = (req->dir == PAGE_BEFORE);
	Datum	   *shown_first;
	bool	   *shown_first_null;
	Datum	   *shown_last;
	bool	   *shown_last_null;
	char	   *next = NULL;
	char	   *prev = NULL;
	int			i;

	if (page_scratch == NULL)
	{
		page_scratch = AllocSetContextCreate(TopMemoryContext, "synchub pagination",
											 SCRATCH_BLOCK_SIZE, SCRATCH_BLOCK_SIZE,
											 ALLOCSET_DEFAULT_MAXSIZE);
#ifdef __GLIBC__

		/*
		 * A page is returned as one large value: its output buffers are
		 * large allocations, freed at the end of every statement, which
		 * leave more free memory at the top of the heap than glibc's
		 * default trim threshold (128 kB).  glibc then gives it back to
		 * the kernel and takes it again on the next page, and on virtual
		 * machines the unmapping (a TLB shootdown on every CPU) costs more
		 * than the page itself.  Backends that paginate keep up to 4 MB of
		 * free heap instead.
		 */
		mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
#endif
	}
	MemoryContextReset(page_scratch);

	for (i = 0; i < req->nargs; i++)
	{
		params->params[i].value = req->args[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = req->argtypes[i];
	}
	r.pub.receiveSlot = receive_row;
	r.pub.rStartup = receiver_startup;
	r.pub.rShutdown = receiver_shutdown;
	r.pub.rDestroy = receiver_destroy;
	r.pub.mydest = DestNone;
	r.page_size = req->page_size;
	r.nkeys = req->order.ncols;
	r.rows = MemoryContextAlloc(page_scratch, sizeof(Jsonb *) * req->page_size);

	options.params = params;
	options.read_only = true;
	options.dest = (DestReceiver *) &r;
	/* rows that go to a receiver of ours count as discarded: SPI_OK_UTILITY */
	if (SPI_execute_plan_extended(plan, &options) < 0)
		elog(ERROR, "page query failed");

	shown_first = backward ? r.last : r.first;
	shown_first_null = backward ? r.lastnull : r.firstnull;
	shown_last = backward ? r.first : r.last;
	shown_last_null = backward ? r.firstnull : r.lastnull;
	if (!backward)
	{
		if (r.has_more)
			next = make_cursor(req, PAGE_AFTER, shown_last, shown_last_null);
		if (req->have_cursor && r.n > 0)
			prev = make_cursor(req, PAGE_BEFORE, shown_first, shown_first_null);
		else if (req->have_cursor)
			prev = make_cursor(req, PAGE_BEFORE, req->keyvalues, req->keynulls);
	}
	else
	{
		if (r.has_more)
			prev = make_cursor(req, PAGE_BEFORE, shown_first, shown_first_null);
		if (r.n > 0)
			next = make_cursor(req, PAGE_AFTER, shown_last, shown_last_null);
		else
			next = make_cursor(req, PAGE_FROM, req->keyvalues, req->keynulls);
	}
	return write_result(&r, backward, next, prev);
}
