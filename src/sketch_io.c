/*-------------------------------------------------------------------------
 * sketch_io.c
 *    Text and binary input/output of synchub.sketch.
 *
 * Text form, a JSON object (keys in any order, pos and neg optional):
 *   {"count":5,"zero":1,"min":-2,"max":10,"pos":{"0":1,"117":2},"neg":{"35":1}}
 * count is every value, zero the zeros, min and max the exact extremes;
 * pos and neg map bucket keys to counts (neg by magnitude).  Binary form:
 * version int16, count int64, zero int64, min float8, max float8, npos
 * int32, nneg int32, then (key int32, count int64) per bucket.  Both inputs
 * are checked by sketch_validate.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "sketch.h"

typedef struct SketchParser
{
	const char *input;
	const char *p;
} SketchParser;

typedef struct BinList
{
	int32		n;
	int32		cap;
	SketchBin  *bins;
} BinList;

#if PG_VERSION_NUM >= 180000
pg_noreturn static void
#else
static void pg_attribute_noreturn()
#endif
parse_error(SketchParser *ps, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type sketch: \"%s\"", ps->input),
			 errdetail("%s at character %d.", what, (int) (ps->p - ps->input) + 1)));
}

static char
parse_peek(SketchParser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
	return *ps->p;
}

static void
parse_expect(SketchParser *ps, char c, const char *what)
{
	if (parse_peek(ps) != c)
		parse_error(ps, what);
	ps->p++;
}

/* A quoted name without escapes; returns it palloc'd. */
static char *
parse_name(SketchParser *ps)
{
	const char *start;

	parse_expect(ps, '"', "Expected a quoted key");
	start = ps->p;
	while (*ps->p && *ps->p != '"' && *ps->p != '\\')
		ps->p++;
	if (*ps->p != '"')
		parse_error(ps, "Unterminated key");
	ps->p++;
	return pnstrdup(start, ps->p - start - 1);
}

static uint64
parse_uint64(SketchParser *ps, const char *s, const char **end)
{
	unsigned long long v;
	char	   *e;

	if (*s < '0' || *s > '9')
		parse_error(ps, "Expected a non-negative integer");
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno != 0 || v > PG_UINT64_MAX)
		parse_error(ps, "Integer out of range");
	*end = e;
	return (uint64) v;
}

static double
parse_double(SketchParser *ps)
{
	char	   *e;
	double		v;

	parse_peek(ps);
	errno = 0;
	v = strtod(ps->p, &e);
	if (e == ps->p || errno != 0 || isnan(v) || isinf(v))
		parse_error(ps, "Expected a finite number");
	ps->p = e;
	return v;
}

static void
parse_bins(SketchParser *ps, BinList *list)
{
	parse_expect(ps, '{', "Expected an object of buckets");
	if (parse_peek(ps) == '}')
	{
		ps->p++;
		return;
	}
	for (;;)
	{
		char	   *name = parse_name(ps);
		char	   *e;
		long		key;
		SketchBin  *b;

		errno = 0;
		key = strtol(name, &e, 10);
		if (*name == '\0' || *e != '\0' || errno != 0 || key < PG_INT32_MIN || key > PG_INT32_MAX)
			parse_error(ps, "Bucket keys must be integers");
		parse_expect(ps, ':', "Expected \":\"");
		if (list->n >= SKETCH_MAX_BINS)
			parse_error(ps, "Too many buckets");
		if (list->n == list->cap)
		{
			list->cap = list->cap ? list->cap * 2 : 16;
			list->bins = list->bins ? repalloc(list->bins, sizeof(SketchBin) * list->cap)
				: palloc(sizeof(SketchBin) * list->cap);
		}
		b = &list->bins[list->n++];
		b->key = (int32) key;
		b->pad = 0;
		parse_peek(ps);
		b->count = parse_uint64(ps, ps->p, &ps->p);
		if (parse_peek(ps) == ',')
		{
			ps->p++;
			continue;
		}
		parse_expect(ps, '}', "Expected \",\" or \"}\"");
		return;
	}
}

PG_FUNCTION_INFO_V1(synchub_sketch_in);
Datum
synchub_sketch_in(PG_FUNCTION_ARGS)
{
	SketchParser ps;
	BinList		pos = {0}, neg = {0};
	uint64		count = 0, zero = 0;
	double		min = 0, max = 0;
	int			seen = 0;		/* bit per key: count zero min max pos neg */
	Sketch	   *sketch;
	Size		size;

	ps.input = PG_GETARG_CSTRING(0);
	ps.p = ps.input;
	parse_expect(&ps, '{', "Expected \"{\"");
	if (parse_peek(&ps) != '}')
	{
		for (;;)
		{
			char	   *name = parse_name(&ps);
			static const char *const names[] = {"count", "zero", "min", "max", "pos", "neg"};
			int			k;

			for (k = 0; k < lengthof(names); k++)
				if (strcmp(name, names[k]) == 0)
					break;
			if (k == lengthof(names))
				parse_error(&ps, "Unknown key");
			if (seen & (1 << k))
				parse_error(&ps, "Duplicate key");
			seen |= 1 << k;
			parse_expect(&ps, ':', "Expected \":\"");
			parse_peek(&ps);
			switch (k)
			{
				case 0:
					count = parse_uint64(&ps, ps.p, &ps.p);
					break;
				case 1:
					zero = parse_uint64(&ps, ps.p, &ps.p);
					break;
				case 2:
					min = parse_double(&ps);
					break;
				case 3:
					max = parse_double(&ps);
					break;
				case 4:
					parse_bins(&ps, &pos);
					break;
				case 5:
					parse_bins(&ps, &neg);
					break;
			}
			if (parse_peek(&ps) == ',')
			{
				ps.p++;
				continue;
			}
			break;
		}
	}
	parse_expect(&ps, '}', "Expected \",\" or \"}\"");
	if (parse_peek(&ps) != '\0')
		parse_error(&ps, "Unexpected text after the sketch");
	if (!(seen & 1))
		parse_error(&ps, "The key \"count\" is missing");
	if (count > 0 && (seen & 12) != 12)
		parse_error(&ps, "A sketch with values needs \"min\" and \"max\"");

	size = SKETCH_SIZE(pos.n + neg.n);
	sketch = palloc0(size);
	SET_VARSIZE(sketch, size);
	sketch->version = SKETCH_VERSION;
	sketch->npos = pos.n;
	sketch->nneg = neg.n;
	sketch->count = count;
	sketch->zero = zero;
	sketch->min = min;
	sketch->max = max;
	if (pos.n > 0)
		memcpy(sketch->bins, pos.bins, sizeof(SketchBin) * pos.n);
	if (neg.n > 0)
		memcpy(sketch->bins + pos.n, neg.bins, sizeof(SketchBin) * neg.n);
	sketch_validate(sketch);
	PG_RETURN_POINTER(sketch);
}

static void
append_bins(StringInfo buf, const char *name, const SketchBin *bins, int32 n)
{
	int32		i;

	appendStringInfo(buf, ",\"%s\":{", name);
	for (i = 0; i < n; i++)
		appendStringInfo(buf, "%s\"%d\":" UINT64_FORMAT, i > 0 ? "," : "",
						 bins[i].key, bins[i].count);
	appendStringInfoChar(buf, '}');
}

PG_FUNCTION_INFO_V1(synchub_sketch_out);
Datum
synchub_sketch_out(PG_FUNCTION_ARGS)
{
	Sketch	   *sketch = PG_GETARG_SKETCH_P(0);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"count\":" UINT64_FORMAT ",\"zero\":" UINT64_FORMAT,
					 sketch->count, sketch->zero);
	if (sketch->count > 0)
		appendStringInfo(&buf, ",\"min\":%s,\"max\":%s",
						 float8out_internal(sketch->min), float8out_internal(sketch->max));
	append_bins(&buf, "pos", sketch->bins, sketch->npos);
	append_bins(&buf, "neg", sketch->bins + sketch->npos, sketch->nneg);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(synchub_sketch_send);
Datum
synchub_sketch_send(PG_FUNCTION_ARGS)
{
	Sketch	   *sketch = PG_GETARG_SKETCH_P(0);
	StringInfoData buf;
	int32		i;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, sketch->version);
	pq_sendint64(&buf, (int64) sketch->count);
	pq_sendint64(&buf, (int64) sketch->zero);
	pq_sendfloat8(&buf, sketch->min);
	pq_sendfloat8(&buf, sketch->max);
	pq_sendint32(&buf, sketch->npos);
	pq_sendint32(&buf, sketch->nneg);
	for (i = 0; i < sketch->npos + sketch->nneg; i++)
	{
		pq_sendint32(&buf, sketch->bins[i].key);
		pq_sendint64(&buf, (int64) sketch->bins[i].count);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(synchub_sketch_recv);
Datum
synchub_sketch_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Sketch		head;
	Sketch	   *sketch;
	Size		size;
	int32		i;

	memset(&head, 0, sizeof(head));
	head.version = (uint16) pq_getmsgint(buf, 2);
	head.count = (uint64) pq_getmsgint64(buf);
	head.zero = (uint64) pq_getmsgint64(buf);
	head.min = pq_getmsgfloat8(buf);
	head.max = pq_getmsgfloat8(buf);
	head.npos = (int32) pq_getmsgint(buf, 4);
	head.nneg = (int32) pq_getmsgint(buf, 4);
	if (head.npos < 0 || head.npos > SKETCH_MAX_BINS ||
		head.nneg < 0 || head.nneg > SKETCH_MAX_BINS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid sketch"),
				 errdetail("A store has more than %d buckets.", SKETCH_MAX_BINS)));
	size = SKETCH_SIZE(head.npos + head.nneg);
	sketch = palloc0(size);
	memcpy(sketch, &head, offsetof(Sketch, bins));
	SET_VARSIZE(sketch, size);
	for (i = 0; i < head.npos + head.nneg; i++)
	{
		sketch->bins[i].key = (int32) pq_getmsgint(buf, 4);
		sketch->bins[i].count = (uint64) pq_getmsgint64(buf);
	}
	sketch_validate(sketch);
	PG_RETURN_POINTER(sketch);
}
