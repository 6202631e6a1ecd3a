/*-------------------------------------------------------------------------
 * worker_limits.c
 *    The worker's copy of the rate windows: synchub._worker_rate_limits
 *    loaded into the shared rate limiter, and the set of keys that load
 *    knew, so that a job of an integration created since the last load
 *    makes the worker load again before its first request instead of
 *    running unlimited until the next periodic load.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "ratelimit.h"
#include "worker_limits.h"

#define LIMIT_KEY_LEN	64

typedef struct KnownKey
{
	char		key[LIMIT_KEY_LEN];
} KnownKey;

static HTAB *known = NULL;

static void
reset_known(void)
{
	HASHCTL		ctl;

	if (known)
		hash_destroy(known);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = LIMIT_KEY_LEN;
	ctl.entrysize = sizeof(KnownKey);
	ctl.hcxt = TopMemoryContext;
	known = hash_create("synchub known rate keys", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/*
 * Read every rate window into the rate limiter (in a transaction, SPI
 * connected).  Rows with a NULL limit name keys that have none (an
 * integration without windows): known, nothing to configure.  The
 * caller's memory context is current again on return (SPI leaves its own).
 */
void
worker_limits_load(void)
{
	MemoryContext caller = CurrentMemoryContext;
	int			limits[4];
	int			per_ms[4];
	int			n = 0;
	char	   *key = NULL;

	if (SPI_execute("SELECT key, requests, per_ms FROM synchub._worker_rate_limits"
					" UNION ALL SELECT 'integration:' || id, NULL, NULL FROM synchub.integrations"
					" ORDER BY 1, 3 NULLS LAST",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read synchub.rate_limits");
	MemoryContextSwitchTo(caller);
	reset_known();
	for (uint64 i = 0; i <= SPI_processed; i++)
	{
		char	   *k = i < SPI_processed ? SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1) : NULL;
		bool		isnull;
		Datum		limit;

		if (key && (k == NULL || strcmp(k, key) != 0))
		{
			if (n > 0)
				synchub_ratelimit_configure(key, n, limits, per_ms);
			if (strlen(key) < LIMIT_KEY_LEN)
				(void) hash_search(known, key, HASH_ENTER, NULL);
			n = 0;
		}
		key = k;
		if (k == NULL || n >= lengthof(limits))
			continue;
		limit = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);
		if (isnull)
			continue;
		limits[n] = DatumGetInt32(limit);
		per_ms[n] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		n++;
	}
	synchub_ratelimit_configure_done();
}

/* Whether the last load knew this key (too long a key counts as known). */
bool
worker_limits_known(const char *key)
{
	if (known == NULL)
		return false;
	if (strlen(key) >= LIMIT_KEY_LEN)
		return true;
	return hash_search(known, key, HASH_FIND, NULL) != NULL;
}
