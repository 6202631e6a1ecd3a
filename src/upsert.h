/*-------------------------------------------------------------------------
 * upsert.h
 *    Bulk upsert of a JSON array of records into a table: the entry point
 *    for C callers (the sync engine) and for synchub.bulk_upsert().
 *
 * upsert_records() must be called inside a transaction; it connects to
 * SPI itself (inside a caller's SPI connection too).  It runs as
 * the current user: the privileges, row-level security, triggers, defaults
 * and generated columns of the target apply as for INSERT ... ON CONFLICT.
 * Records that fail are written to synchub.rejects (with job_id and
 * integration_id from the options) unless on_reject is "error".
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_UPSERT_H
#define SYNCHUB_UPSERT_H

#include "postgres.h"

#include "utils/jsonb.h"

#define UPSERT_DEFAULT_BATCH_SIZE	2000
#define UPSERT_MAX_BATCH_SIZE		100000

typedef struct UpsertOptions
{
	bool		strict;			/* unknown keys are an error */
	bool		reject_error;	/* a rejected record fails the call */
	int			batch_size;		/* records per statement */
	bool		has_job_id;
	int64		job_id;			/* recorded in synchub.rejects */
	bool		has_integration_id;
	int64		integration_id; /* recorded in synchub.rejects */
	char	   *external_id_path;	/* JSON path of the record's external id,
									 * recorded in synchub.rejects; or NULL */
	char	   *touch_column;	/* set to now() when a row is updated (not
								 * compared), if the target has it; or NULL */
	bool		as_table_owner; /* write as the target's owner, restricted
								 * (table_owner.c); rejects as the caller,
								 * owned by the integration's owner */
} UpsertOptions;

typedef struct UpsertCounts
{
	int64		inserted;
	int64		updated;
	int64		unchanged;
	int64		rejected;
} UpsertCounts;

/* Installs the planner hook of src/upsert_planner.c (from _PG_init). */
extern void upsert_planner_init(void);

/* Defaults for every option. */
extern void upsert_default_options(UpsertOptions *opts);

/* Reads the options object of synchub.bulk_upsert into *opts. */
extern void upsert_parse_options(Jsonb *options, UpsertOptions *opts);

/*
 * Upserts records (a JSON array of objects) into target.  key_columns holds
 * nkeys column names backed by a unique index; field_map is NULL (same-name
 * keys) or an object {"column": "json.path"}.
 */
extern void upsert_records(Oid target, Jsonb *records,
						   char **key_columns, int nkeys,
						   Jsonb *field_map, const UpsertOptions *opts,
						   UpsertCounts *out);

#endif							/* SYNCHUB_UPSERT_H */
