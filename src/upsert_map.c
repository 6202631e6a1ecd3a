/*-------------------------------------------------------------------------
 * upsert_map.c
 *    Bulk upsert: which target columns a record maps to, the JSON paths
 *    that find a column's value in a record, and the conversion of a JSON
 *    value to a Datum of the column's type.
 *
 * Without a field_map every writable column maps to the record key of the
 * same name; with one, each mapped column has a JSON path (see
 * upsert_path_parse for the syntax).  Generated columns and identity
 * columns GENERATED ALWAYS are never written.
 *
 * Conversion follows json_populate_record: JSON null is SQL NULL, a json or
 * jsonb column takes the value as it is, an array column takes a JSON array
 * element by element, and everything else goes through the type's input
 * function with the column's typmod (so varchar(n), numeric(p,s) and
 * domains are checked here, before the statement runs).  A conversion error
 * is raised as an ordinary ERROR; the caller isolates it to its record.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "upsert_internal.h"

static int	find_attribute(TupleDesc tupdesc, const char *name);
static void check_writable(UpsertTarget *t, Form_pg_attribute att);
static void init_column(UpsertColumn *col, Form_pg_attribute att);
static void map_keys(UpsertTarget *t, char **key_columns, int nkeys);
static void check_arbiter(UpsertTarget *t);
static char *value_text(JsonbValue *v);
static char *value_json(JsonbValue *v);
static Datum convert_array(UpsertColumn *col, JsonbContainer *arr);

/*---- columns ----*/

/* Attribute number (0-based) of a live column named name, or -1. */
static int
find_attribute(TupleDesc tupdesc, const char *name)
{
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

static bool
is_writable(Form_pg_attribute att)
{
	return !att->attisdropped && !att->attgenerated &&
		att->attidentity != ATTRIBUTE_IDENTITY_ALWAYS;
}

static void
check_writable(UpsertTarget *t, Form_pg_attribute att)
{
	if (!is_writable(att))
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("column \"%s\" of relation \"%s\" cannot be written",
						NameStr(att->attname), RelationGetRelationName(t->rel)),
				 att->attgenerated ?
				 errdetail("Column \"%s\" is a generated column.", NameStr(att->attname)) :
				 errdetail("Column \"%s\" is an identity column defined as GENERATED ALWAYS.",
						   NameStr(att->attname))));
}

static void
init_column(UpsertColumn *col, Form_pg_attribute att)
{
	Oid			func;
	TypeCacheEntry *tc;

	col->attnum = att->attnum;
	col->name = pstrdup(NameStr(att->attname));
	col->typid = att->atttypid;
	col->typmod = att->atttypmod;
	col->collation = att->attcollation;
	col->typlen = att->attlen;
	col->typbyval = att->attbyval;
	col->key_pos = -1;

	tc = lookup_type_cache(col->typid, TYPECACHE_EQ_OPR);
	col->has_eq = OidIsValid(tc->eq_opr);

	getTypeInputInfo(col->typid, &func, &col->ioparam);
	fmgr_info(func, &col->input);

	if (col->typid == JSONBOID)
		col->conv = UPSERT_CONV_JSONB;
	else if (col->typid == JSONOID)
		col->conv = UPSERT_CONV_JSON;
	else if (col->typlen == -1 && OidIsValid(col->elemtype = get_element_type(col->typid)))
	{
		col->conv = UPSERT_CONV_ARRAY;
		getTypeInputInfo(col->elemtype, &func, &col->elem_ioparam);
		fmgr_info(func, &col->elem_input);
		get_typlenbyvalalign(col->elemtype, &col->elmlen, &col->elmbyval, &col->elmalign);
	}
	else
		col->conv = UPSERT_CONV_INPUT;
}

/*
 * Fills t->cols from the target's attributes (same-name mapping) or from
 * field_map, then the key columns.
 */
void
upsert_map_columns(UpsertTarget *t, char **key_columns, int nkeys, Jsonb *field_map)
{
	TupleDesc	tupdesc = t->tupdesc;
	int			n = 0;

	t->cols = palloc0(sizeof(UpsertColumn) * Max(tupdesc->natts, 1));
	t->same_name = (field_map == NULL);

	if (field_map == NULL)
	{
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);
			UpsertColumn *col;

			if (!is_writable(att))
				continue;
			col = &t->cols[n++];
			init_column(col, att);
			col->path.nsteps = 1;
			col->path.steps = palloc0(sizeof(UpsertPathStep));
			col->path.steps[0].key = col->name;
			col->path.steps[0].keylen = strlen(col->name);
		}
	}
	else
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		bool	   *seen = palloc0(sizeof(bool) * tupdesc->natts);

		if (!JB_ROOT_IS_OBJECT(field_map))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("field_map must be a JSON object"),
					 errhint("Map each column to a JSON path, as in {\"email\": \"properties.email\"}.")));

		it = JsonbIteratorInit(&field_map->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *colname;
			char	   *what;
			int			attno;
			UpsertColumn *col;

			if (tok != WJB_KEY)
				continue;
			colname = pnstrdup(v.val.string.val, v.val.string.len);
			tok = JsonbIteratorNext(&it, &v, true);
			Assert(tok == WJB_VALUE);

			attno = find_attribute(tupdesc, colname);
			if (attno < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								colname, RelationGetRelationName(t->rel)),
						 errdetail("The column is a key of field_map.")));
			check_writable(t, TupleDescAttr(tupdesc, attno));
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("field_map value for column \"%s\" must be a string", colname),
						 errhint("Values of field_map are JSON paths, as in \"properties.email\".")));
			if (seen[attno])
				continue;		/* a jsonb object has unique keys */
			seen[attno] = true;

			col = &t->cols[n++];
			init_column(col, TupleDescAttr(tupdesc, attno));
			what = psprintf("field_map for column \"%s\"", colname);
			upsert_path_parse(pnstrdup(v.val.string.val, v.val.string.len), &col->path, what);
		}

		/* keep attribute order, whatever the order of field_map's keys */
		for (int i = 1; i < n; i++)
		{
			UpsertColumn tmp = t->cols[i];
			int			j = i - 1;

			while (j >= 0 && t->cols[j].attnum > tmp.attnum)
			{
				t->cols[j + 1] = t->cols[j];
				j--;
			}
			t->cols[j + 1] = tmp;
		}
	}
	t->ncols = n;

	map_keys(t, key_columns, nkeys);
	check_arbiter(t);
}

static void
map_keys(UpsertTarget *t, char **key_columns, int nkeys)
{
	if (nkeys < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key_columns must name at least one column")));

	t->nkeys = nkeys;
	t->keycols = palloc(sizeof(int) * nkeys);
	for (int k = 0; k < nkeys; k++)
	{
		const char *name = key_columns[k];
		int			c;
		int			attno;
		UpsertColumn *col;
		TypeCacheEntry *tc;

		attno = find_attribute(t->tupdesc, name);
		if (attno < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist",
							name, RelationGetRelationName(t->rel)),
					 errdetail("The column is named in key_columns.")));
		check_writable(t, TupleDescAttr(t->tupdesc, attno));

		for (c = 0; c < t->ncols; c++)
			if (t->cols[c].attnum == attno + 1)
				break;
		if (c == t->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" is not in field_map", name),
					 errhint("Map every key column to a JSON path.")));
		col = &t->cols[c];
		if (col->key_pos >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column \"%s\" appears more than once in key_columns", name)));
		col->key_pos = k;
		t->keycols[k] = c;

		tc = lookup_type_cache(col->typid, TYPECACHE_HASH_PROC_FINFO |
							   TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);
		if (!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("key column \"%s\" has type %s, which has no hash function",
							name, format_type_be(col->typid)),
					 errdetail("Duplicate keys in one array are found by hashing the key.")));
		col->hash_fn = &tc->hash_proc_finfo;
		col->eq_fn = &tc->eq_opr_finfo;
		col->cmp_fn = OidIsValid(tc->cmp_proc) ? &tc->cmp_proc_finfo : NULL;
	}
}

/*
 * INSERT ... ON CONFLICT (keys) needs a unique index on exactly the key
 * columns (immediate, valid, without expressions or predicate).
 */
static void
check_arbiter(UpsertTarget *t)
{
	List	   *indexes = RelationGetIndexList(t->rel);
	ListCell   *lc;
	StringInfoData keys;

	foreach(lc, indexes)
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index idx;
		bool		match;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		match = idx->indisunique && idx->indimmediate && idx->indisvalid &&
			idx->indnkeyatts == t->nkeys &&
			heap_attisnull(tup, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL);
		for (int i = 0; match && i < idx->indnkeyatts; i++)
		{
			bool		found = false;

			for (int k = 0; k < t->nkeys; k++)
				if (t->cols[t->keycols[k]].attnum == idx->indkey.values[i])
					found = true;
			match = found;
		}
		ReleaseSysCache(tup);
		if (match)
			return;
	}

	initStringInfo(&keys);
	for (int k = 0; k < t->nkeys; k++)
		appendStringInfo(&keys, "%s%s", k ? ", " : "", t->cols[t->keycols[k]].name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 errmsg("there is no unique index on \"%s\" (%s)",
					RelationGetRelationName(t->rel), keys.data),
			 errhint("key_columns must be the columns of a unique index or constraint that has no expressions, predicate or deferral.")));
}

/*---- JSON paths ----*/

static void
path_error(const char *text, const char *what, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid JSON path \"%s\" in %s", text, what),
			 errdetail("%s", detail),
			 errhint("A path is keys separated by dots, with array indexes in brackets, as in \"emails[0].value\"; a key with special characters is written in double quotes.")));
}

/*
 * Parses a JSON path:
 *
 *   path := step { "." key | "[" digits "]" }
 *   step := key | "[" digits "]"
 *   key  := one or more characters other than . [ ] "
 *         | '"' characters, with \" and \\ escaped, '"'
 */
void
upsert_path_parse(const char *text, UpsertPath *path, const char *what)
{
	const char *p = text;
	int			cap = 4;

	path->nsteps = 0;
	path->steps = palloc(sizeof(UpsertPathStep) * cap);
	if (*p == '\0')
		path_error(text, what, "The path is empty.");

	for (;;)
	{
		UpsertPathStep *step;

		if (path->nsteps == cap)
		{
			cap *= 2;
			path->steps = repalloc(path->steps, sizeof(UpsertPathStep) * cap);
		}
		step = &path->steps[path->nsteps++];
		step->key = NULL;
		step->keylen = 0;
		step->index = 0;

		if (*p == '[')
		{
			int64		idx = 0;

			p++;
			if (!isdigit((unsigned char) *p))
				path_error(text, what, "An array index must be a non-negative integer.");
			while (isdigit((unsigned char) *p))
			{
				idx = idx * 10 + (*p++ - '0');
				if (idx > PG_INT32_MAX)
					path_error(text, what, "An array index is too large.");
			}
			if (*p++ != ']')
				path_error(text, what, "An array index must end with \"]\".");
			step->index = (int) idx;
		}
		else if (*p == '"')
		{
			StringInfoData key;

			initStringInfo(&key);
			p++;
			while (*p && *p != '"')
			{
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				appendStringInfoChar(&key, *p++);
			}
			if (*p++ != '"')
				path_error(text, what, "A quoted key must end with a double quote.");
			step->key = key.data;
			step->keylen = key.len;
		}
		else
		{
			const char *start = p;

			while (*p && *p != '.' && *p != '[' && *p != ']' && *p != '"')
				p++;
			if (p == start)
				path_error(text, what, "A key is empty or starts with a special character.");
			if (*p == ']' || *p == '"')
				path_error(text, what, "A key that holds \"]\" or a double quote must be quoted.");
			step->key = pnstrdup(start, p - start);
			step->keylen = p - start;
		}

		if (*p == '\0')
			break;
		if (*p == '.')
		{
			p++;
			if (*p == '\0' || *p == '.' || *p == '[')
				path_error(text, what, "A dot must be followed by a key.");
		}
		else if (*p != '[')
			path_error(text, what, "Steps must be separated by a dot or start with \"[\".");
	}
}

/*
 * The value at path in record, or NULL when a step is missing (a key that
 * is absent, an index past the end, or a step into a scalar).  buf is used
 * for the result when the path ends at an object key.
 */
JsonbValue *
upsert_path_find(JsonbContainer *record, const UpsertPath *path, JsonbValue *buf)
{
	JsonbContainer *c = record;
	JsonbValue *v = NULL;

	for (int i = 0; i < path->nsteps; i++)
	{
		const UpsertPathStep *step = &path->steps[i];

		if (c == NULL)
			return NULL;
		if (step->key != NULL)
		{
			if (!JsonContainerIsObject(c))
				return NULL;
			v = getKeyJsonValueFromContainer(c, step->key, step->keylen, buf);
		}
		else
		{
			if (!JsonContainerIsArray(c) || JsonContainerIsScalar(c))
				return NULL;
			v = getIthJsonbValueFromContainer(c, step->index);
		}
		if (v == NULL)
			return NULL;
		c = (v->type == jbvBinary) ? v->val.binary.data : NULL;
	}
	return v;
}

/*---- conversion ----*/

/* The text a JSON value gives a type's input function. */
static char *
value_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return value_json(v);
	}
}

/* The JSON text of a value. */
static char *
value_json(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	else
	{
		Jsonb	   *jb = JsonbValueToJsonb(v);

		return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
}

static Datum
convert_array(UpsertColumn *col, JsonbContainer *arr)
{
	int			n = JsonContainerSize(arr);
	Datum	   *values;
	bool	   *nulls;
	int			dims[1];
	int			lbs[1];
	bool		json_elems = (col->elemtype == JSONBOID || col->elemtype == JSONOID);

	if (n == 0)
		return PointerGetDatum(construct_empty_array(col->elemtype));

	values = palloc(sizeof(Datum) * n);
	nulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

		nulls[i] = (e->type == jbvNull);
		if (nulls[i])
		{
			values[i] = (Datum) 0;
			continue;
		}
		if (e->type == jbvBinary && !json_elems)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid value for column \"%s\"", col->name),
					 errdetail("Element %d of the JSON array is an array or object.", i)));
		values[i] = InputFunctionCall(&col->elem_input,
									  json_elems ? value_json(e) : value_text(e),
									  col->elem_ioparam, col->typmod);
	}
	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, col->elemtype,
											  col->elmlen, col->elmbyval, col->elmalign));
}

/* The value v of a record as a Datum of col's type; raises on a bad value. */
Datum
upsert_convert(UpsertColumn *col, JsonbValue *v, bool *isnull)
{
	*isnull = (v->type == jbvNull);
	if (*isnull)
		return (Datum) 0;

	switch (col->conv)
	{
		case UPSERT_CONV_JSONB:
			return JsonbPGetDatum(JsonbValueToJsonb(v));
		case UPSERT_CONV_JSON:
			return InputFunctionCall(&col->input, value_json(v), col->ioparam, col->typmod);
		case UPSERT_CONV_ARRAY:
			if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
				return convert_array(col, v->val.binary.data);
			break;
		case UPSERT_CONV_INPUT:
			break;
	}
	return InputFunctionCall(&col->input, value_text(v), col->ioparam, col->typmod);
}

/*
 * strict: every key of a record must be a column.  The common case costs
 * one lookup per column; only a record with a key too many is walked.
 */
void
upsert_check_strict(UpsertTarget *t, JsonbContainer *record, int index)
{
	JsonbValue	buf;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	uint32		matched = 0;

	for (int c = 0; c < t->ncols; c++)
		if (getKeyJsonValueFromContainer(record, t->cols[c].name,
										 strlen(t->cols[c].name), &buf) != NULL)
			matched++;
	if (matched == JsonContainerSize(record))
		return;

	it = JsonbIteratorInit(record);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *key;
		int			attno;
		bool		mapped = false;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		for (int c = 0; c < t->ncols && !mapped; c++)
			mapped = (strcmp(t->cols[c].name, key) == 0);
		if (mapped)
			continue;
		attno = find_attribute(t->tupdesc, key);
		if (attno >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("record %d has key \"%s\", a column that cannot be written", index, key),
					 errhint("Leave out the \"strict\" option to ignore such keys.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("record %d has key \"%s\", which is not a column of \"%s\"",
						index, key, RelationGetRelationName(t->rel)),
				 errhint("Leave out the \"strict\" option to ignore unknown keys.")));
	}
}
