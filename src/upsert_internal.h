/*-------------------------------------------------------------------------
 * upsert_internal.h
 *    Structures shared by the files of the bulk upsert module:
 *    upsert_sql.c (the SQL function and its options), upsert.c (records,
 *    dedup, batches, rejects), upsert_map.c
 *    (columns, JSON paths, type conversion) and upsert_exec.c (statements,
 *    execution, isolation of failing records).
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_UPSERT_INTERNAL_H
#define SYNCHUB_UPSERT_INTERNAL_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "upsert.h"
#include "table_owner.h"

/* One step of a JSON path: an object key or an array index. */
typedef struct UpsertPathStep
{
	char	   *key;			/* NULL for an array index */
	int			keylen;
	int			index;
} UpsertPathStep;

typedef struct UpsertPath
{
	int			nsteps;
	UpsertPathStep *steps;
} UpsertPath;

/* How a JSON value becomes a Datum of the column's type. */
typedef enum UpsertConv
{
	UPSERT_CONV_INPUT,			/* text of the value through the type's input */
	UPSERT_CONV_JSONB,			/* the value as jsonb */
	UPSERT_CONV_JSON,			/* the value's JSON text through json_in */
	UPSERT_CONV_ARRAY			/* a JSON array element by element */
} UpsertConv;

/* A target column that records are mapped to. */
typedef struct UpsertColumn
{
	AttrNumber	attnum;
	char	   *name;
	Oid			typid;
	int32		typmod;
	Oid			collation;
	int16		typlen;
	bool		typbyval;
	int			key_pos;		/* position in key_columns, or -1 */
	UpsertPath	path;			/* where the value is in a record */
	UpsertConv	conv;
	FmgrInfo	input;
	Oid			ioparam;
	bool		has_eq;			/* the type has a default equality operator */
	/* elements of an array column (UPSERT_CONV_ARRAY) */
	Oid			elemtype;
	FmgrInfo	elem_input;
	Oid			elem_ioparam;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	/* key columns: hash, equality and order of the type */
	FmgrInfo   *hash_fn;
	FmgrInfo   *eq_fn;
	FmgrInfo   *cmp_fn;			/* NULL when the type has no btree order */
} UpsertColumn;

/* The target table and how records map to it. */
typedef struct UpsertTarget
{
	Relation	rel;
	TupleDesc	tupdesc;
	char	   *qualname;		/* quoted schema.table */
	Oid			rowarraytype;	/* array of the table's row type */
	bool		partitioned;	/* a partitioned table */
	bool		same_name;		/* no field_map: keys are column names */
	int			ncols;
	UpsertColumn *cols;			/* mapped columns, in attribute order */
	int			nkeys;
	int		   *keycols;		/* indexes into cols, in key_columns order */
	char	   *touch;			/* quoted column set to now() on update, or NULL */
} UpsertTarget;

/* A record ready to be written. */
typedef struct UpsertRow
{
	int			index;			/* position in the records array */
	Datum		tuple;			/* composite of the target's row type */
	Bitmapset  *present;		/* indexes into cols present in the record */
} UpsertRow;

/* A prepared statement for one set of present columns. */
typedef struct UpsertPlan
{
	Bitmapset  *present;
	SPIPlanPtr	plan;
} UpsertPlan;

/* State of one upsert_records() call. */
typedef struct UpsertRun
{
	UpsertTarget target;
	const UpsertOptions *opts;
	UpsertCounts *counts;
	JsonbContainer *records;	/* the JSON array */
	bool		has_external_id;
	UpsertPath	external_id;
	SPIPlanPtr	reject_plan;
	List	   *plans;			/* UpsertPlan * */
	int			current;		/* index of the record being processed */
	MemoryContext call_cxt;		/* lives as long as the call */
	SynchubUserSave caller;		/* with opts->as_table_owner: who to restore */
} UpsertRun;

/* upsert_map.c */
extern void upsert_map_columns(UpsertTarget *t, char **key_columns, int nkeys,
							   Jsonb *field_map);
extern void upsert_path_parse(const char *text, UpsertPath *path,
							  const char *what);
extern JsonbValue *upsert_path_find(JsonbContainer *record,
									const UpsertPath *path, JsonbValue *buf);
extern Datum upsert_convert(UpsertColumn *col, JsonbValue *v, bool *isnull);
extern void upsert_check_strict(UpsertTarget *t, JsonbContainer *record,
								int index);

/* upsert_exec.c */
typedef void (*UpsertStep) (UpsertRun *run, int item, void *arg);
extern void upsert_guarded_loop(UpsertRun *run, int n, UpsertStep fn, void *arg);
extern void upsert_exec_rows(UpsertRun *run, UpsertRow *rows, int nrows);
extern void upsert_planner_set(const UpsertTarget *t);

/* upsert.c */
extern void upsert_reject(UpsertRun *run, int index, ErrorData *edata);

#endif							/* SYNCHUB_UPSERT_INTERNAL_H */
