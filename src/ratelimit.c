/*-------------------------------------------------------------------------
 * ratelimit.c
 *    Rate limits, server-announced throttling and circuit breakers, per
 *    (database, key).  The key of an http job is its URL's host.
 *
 * Rate limits: up to RL_WINDOWS windows per key ("30 per second, 1,000
 * per minute, 10,000 per hour"), from table synchub.rate_limits.  Each
 * window is a sliding window kept as RL_SLOTS counters of 1/64 of the
 * window: a request is allowed when the counters that overlap the last
 * window sum to less than the limit.  Counting whole slots over-counts,
 * never under-counts, and the window is stretched by 10% (at least 250 ms)
 * so that network jitter cannot put more requests than the limit into any
 * window as the server sees it.
 *
 * Throttling: a 429/503 with Retry-After, or a response that says no
 * requests remain (X-RateLimit-Remaining: 0 with a reset header), blocks
 * the key until then.
 *
 * Circuit breaker: synchub.circuit_failures consecutive failures (5xx,
 * timeouts, connection errors) open the circuit; after
 * synchub.circuit_cooldown it half-opens and lets one request through,
 * whose success closes it and whose failure opens it again.
 *
 * Jobs whose key is blocked, full or open are not claimed (they stay
 * pending and use no attempt).  The state is in shared memory when synchub
 * is preloaded (visible to every session through synchub.circuits);
 * without preloading it lives in the worker's private memory.
 *
 * Keys: an entry holds the key's first RL_KEY_LEN - 1 bytes (any DNS host
 * name fits whole), its length and a 64-bit hash of the whole key; a
 * lookup compares all three, so a longer key finds its own entry and two
 * keys that share their first bytes keep separate state.  The circuits
 * view shows such a key cut; the claim cannot skip its jobs by name, so
 * they are claimed and handed back (no attempt used) while it refuses.
 *
 * The table has RL_KEYS entries for all databases.  An entry whose state
 * still matters is never given to another key: windows that hold requests,
 * a pause not yet over, an open circuit not yet cooled down, a trial
 * request still out.  Any other entry may be reused, those without windows
 * first.  Each worker keeps its own copy of the windows it configured, and
 * puts them back on a reused entry of its keys (nothing was counted in
 * them, so nothing is lost).  When every entry holds live state, a key
 * with windows is refused for now instead of running unlimited.
 *
 * An LWLock guards the table (scans of all entries run under it).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "ratelimit.h"

#define RL_KEYS		256
#define RL_KEY_LEN	256			/* a DNS name (253 bytes) fits whole */
#define RL_WINDOWS	4
#define RL_SLOTS	65			/* 64 slots per window, plus the current one */
#define RL_FULL_WAIT_MS 1000	/* a key with windows, when no entry is free */
#define RL_TRANCHE	"synchub rate limits"

typedef enum
{
	CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN
} CircuitState;

/* What identifies a key: its hash, its length and its first bytes. */
typedef struct RlKey
{
	uint64		hash;			/* of the whole key */
	Size		len;			/* of the whole key */
	char		text[RL_KEY_LEN];	/* the key, cut on a character boundary */
} RlKey;

typedef struct RlWindow
{
	int32		limit;
	int32		per_ms;			/* as configured */
	int64		slot_ms;
	int64		last_slot;
	uint32		counts[RL_SLOTS];
} RlWindow;

typedef struct RlEntry
{
	bool		in_use;
	Oid			dboid;
	RlKey		key;
	int			nwindows;
	RlWindow	w[RL_WINDOWS];
	TimestampTz blocked_until;
	CircuitState circuit;
	int			failures;
	TimestampTz opened_at;
	bool		trial;			/* half-open: the one request is out */
	TimestampTz last_used;
} RlEntry;

typedef struct RlShared
{
	LWLock	   *lock;			/* NULL in private memory */
	RlEntry		e[RL_KEYS];
} RlShared;

/* A worker's own copy of the windows of one key (its last configuration). */
typedef struct RlLocal
{
	RlKey		key;			/* hash key: first */
	int			nwindows;
	int			limits[RL_WINDOWS];
	int			per_ms[RL_WINDOWS];
} RlLocal;

int			synchub_circuit_failures = 5;
int			synchub_circuit_cooldown = 30000;

static bool preloaded = false;
static RlShared *rl = NULL;

/* This process's windows: of the last configuration pass, and of the next. */
static HTAB *local_cur = NULL;
static HTAB *local_next = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;

static void
rl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(RlShared));
	RequestNamedLWLockTranche(RL_TRANCHE, 1);
}
#endif

void
synchub_ratelimit_init(void)
{
	DefineCustomIntVariable("synchub.circuit_failures",
							"Consecutive failures of a host that open its circuit breaker.",
							NULL, &synchub_circuit_failures,
							5, 1, 1000000, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("synchub.circuit_cooldown",
							"How long an open circuit breaker waits before it lets one request through.",
							NULL, &synchub_circuit_cooldown,
							30000, 1, 86400000, PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	preloaded = true;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rl_shmem_request;
#else
	RequestAddinShmemSpace(sizeof(RlShared));
	RequestNamedLWLockTranche(RL_TRANCHE, 1);
#endif
}

static RlShared *
state(void)
{
	bool		found = false;

	if (rl)
		return rl;
	if (preloaded)
	{
		LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
		rl = ShmemInitStruct("synchub rate limits", sizeof(RlShared), &found);
		if (!found)
		{
			memset(rl, 0, sizeof(RlShared));
			rl->lock = &(GetNamedLWLockTranche(RL_TRANCHE))->lock;
		}
		LWLockRelease(AddinShmemInitLock);
	}
	else
		rl = MemoryContextAllocZero(TopMemoryContext, sizeof(RlShared));
	return rl;
}

static void
rl_lock(RlShared *s, LWLockMode mode)
{
	if (s->lock)
		LWLockAcquire(s->lock, mode);
}

static void
rl_unlock(RlShared *s)
{
	if (s->lock)
		LWLockRelease(s->lock);
}

/* The identity of key (its cut text in this database's encoding). */
static void
make_key(const char *key, RlKey *k)
{
	Size		len = strlen(key);
	int			cut;

	memset(k, 0, sizeof(RlKey));
	k->hash = hash_bytes_extended((const unsigned char *) key, (int) Min(len, (Size) PG_INT32_MAX), 0);
	k->len = len;
	cut = len < RL_KEY_LEN ? (int) len : pg_mbcliplen(key, (int) Min(len, (Size) PG_INT32_MAX), RL_KEY_LEN - 1);
	memcpy(k->text, key, cut);
}

static bool
same_key(const RlKey *a, const RlKey *b)
{
	return a->hash == b->hash && a->len == b->len && strcmp(a->text, b->text) == 0;
}

static uint32
local_hash(const void *key, Size keysize)
{
	return (uint32) ((const RlKey *) key)->hash;
}

static int
local_match(const void *key1, const void *key2, Size keysize)
{
	return same_key(key1, key2) ? 0 : 1;
}

static HTAB *
local_create(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(RlKey);
	ctl.entrysize = sizeof(RlLocal);
	ctl.hash = local_hash;
	ctl.match = local_match;
	ctl.hcxt = TopMemoryContext;
	return hash_create("synchub rate windows", 64, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* The windows this process configured for k in the last pass, or NULL. */
static RlLocal *
local_find(const RlKey *k)
{
	if (local_cur == NULL)
		return NULL;
	return hash_search(local_cur, k, HASH_FIND, NULL);
}

static int64
ms_of(TimestampTz t)
{
	return t / 1000;
}

/* Move the window to now: zero the slots that were left behind. */
static void
advance(RlWindow *w, int64 now_ms)
{
	int64		cur = now_ms / w->slot_ms;

	if (cur - w->last_slot >= RL_SLOTS)
		memset(w->counts, 0, sizeof(w->counts));
	else
		for (int64 s = w->last_slot + 1; s <= cur; s++)
			w->counts[s % RL_SLOTS] = 0;
	if (cur > w->last_slot)
		w->last_slot = cur;
}

static uint64
window_sum(RlWindow *w)
{
	uint64		sum = 0;

	for (int i = 0; i < RL_SLOTS; i++)
		sum += w->counts[i];
	return sum;
}

/* ms until the oldest counted slot leaves the window. */
static long
window_wait(RlWindow *w, int64 now_ms)
{
	for (int64 s = w->last_slot - RL_SLOTS + 1; s <= w->last_slot; s++)
		if (s >= 0 && w->counts[s % RL_SLOTS] > 0)
			return (long) Max(1, (s + RL_SLOTS) * w->slot_ms - now_ms);
	return 1;
}

/*
 * Give e these windows.  New windows start with the requests the old ones
 * still held, counted as made now: a change of budget is no burst.
 */
static void
set_windows(RlEntry *e, int nwindows, const int *limits, const int *per_ms, int64 now_ms)
{
	uint64		recent = 0;

	for (int i = 0; i < e->nwindows; i++)
	{
		advance(&e->w[i], now_ms);
		recent = Max(recent, window_sum(&e->w[i]));
	}
	memset(e->w, 0, sizeof(e->w));
	e->nwindows = nwindows;
	for (int i = 0; i < nwindows; i++)
	{
		int64		stretched = per_ms[i] + Max(250, per_ms[i] / 10);
		RlWindow   *w = &e->w[i];

		w->limit = limits[i];
		w->per_ms = per_ms[i];
		w->slot_ms = Max(1, (stretched + RL_SLOTS - 2) / (RL_SLOTS - 1));
		w->last_slot = now_ms / w->slot_ms;
		w->counts[w->last_slot % RL_SLOTS] = (uint32) Min(recent, PG_UINT32_MAX);
	}
}

/*
 * Whether e holds nothing that still matters, so that it may go to another
 * key (lock held exclusively: its windows are moved to now).
 */
static bool
reusable(RlEntry *e, TimestampTz now)
{
	int64		now_ms = ms_of(now);
	TimestampTz cooled;

	if (!e->in_use)
		return true;
	if (e->blocked_until > now)
		return false;
	/* open: until it may half-open; half-open: while its trial may be out */
	cooled = TimestampTzPlusMilliseconds(e->circuit == CIRCUIT_OPEN ? e->opened_at : e->last_used,
										 synchub_circuit_cooldown);
	if ((e->circuit == CIRCUIT_OPEN || (e->circuit == CIRCUIT_HALF_OPEN && e->trial)) && cooled > now)
		return false;
	for (int i = 0; i < e->nwindows; i++)
	{
		advance(&e->w[i], now_ms);
		if (window_sum(&e->w[i]) > 0)
			return false;
	}
	return true;
}

/*
 * The entry of k in this database (lock held exclusively).  Created if
 * asked and an entry is free or reusable, with the windows of lw if given;
 * NULL otherwise.
 */
static RlEntry *
lookup(RlShared *s, const RlKey *k, bool create, TimestampTz now, const RlLocal *lw)
{
	RlEntry    *victim = NULL;
	int			victim_rank = 3;

	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (e->in_use && e->dboid == MyDatabaseId && same_key(&e->key, k))
			return e;
	}
	if (!create)
		return NULL;
	/* a free entry, else a reusable one without windows, else one with; the stalest */
	for (int i = 0; i < RL_KEYS && victim_rank > 0; i++)
	{
		RlEntry    *e = &s->e[i];
		int			rank;

		if (!e->in_use)
			rank = 0;
		else if (!reusable(e, now))
			continue;
		else
			rank = e->nwindows == 0 ? 1 : 2;
		if (rank < victim_rank || (rank == victim_rank && e->last_used < victim->last_used))
		{
			victim = e;
			victim_rank = rank;
		}
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(RlEntry));
	victim->in_use = true;
	victim->dboid = MyDatabaseId;
	victim->key = *k;
	victim->last_used = now;
	if (lw)
		set_windows(victim, lw->nwindows, lw->limits, lw->per_ms, ms_of(now));
	return victim;
}

/* Set key's windows (this database); resets the counts when they change. */
void
synchub_ratelimit_configure(const char *key, int nwindows, const int *limits, const int *per_ms)
{
	RlShared   *s = state();
	TimestampTz now = GetCurrentTimestamp();
	RlKey		k;
	RlLocal    *lw;
	RlEntry    *e;

	nwindows = Min(nwindows, RL_WINDOWS);
	make_key(key, &k);
	if (local_next == NULL)
		local_next = local_create();
	lw = hash_search(local_next, &k, HASH_ENTER, NULL);
	lw->nwindows = nwindows;
	for (int i = 0; i < nwindows; i++)
	{
		lw->limits[i] = limits[i];
		lw->per_ms[i] = per_ms[i];
	}

	rl_lock(s, LW_EXCLUSIVE);
	e = lookup(s, &k, true, now, NULL);
	if (e)
	{
		bool		same = e->nwindows == nwindows;

		for (int i = 0; same && i < nwindows; i++)
			same = e->w[i].limit == limits[i] && e->w[i].per_ms == per_ms[i];
		if (!same)
			set_windows(e, nwindows, limits, per_ms, ms_of(now));
	}
	rl_unlock(s);
	/* no entry free: synchub_ratelimit_acquire() refuses the key until one is */
}

/*
 * End of a configuration pass: keys of this database that were not
 * configured lose their windows.  The next pass starts empty.
 */
void
synchub_ratelimit_configure_done(void)
{
	RlShared   *s = state();

	if (local_cur)
		hash_destroy(local_cur);
	local_cur = local_next;
	local_next = NULL;

	rl_lock(s, LW_EXCLUSIVE);
	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (e->in_use && e->dboid == MyDatabaseId && e->nwindows > 0 && local_find(&e->key) == NULL)
			e->nwindows = 0;
	}
	rl_unlock(s);
}

/* Would a request for e be refused now?  (Lock held exclusively.) */
static bool
refused(RlEntry *e, TimestampTz now, long *wait_ms)
{
	int64		now_ms = ms_of(now);

	*wait_ms = 0;
	if (e->blocked_until > now)
	{
		*wait_ms = (long) ((e->blocked_until - now) / 1000) + 1;
		return true;
	}
	if (e->circuit == CIRCUIT_OPEN)
	{
		TimestampTz half = TimestampTzPlusMilliseconds(e->opened_at, synchub_circuit_cooldown);

		if (half > now)
		{
			*wait_ms = (long) ((half - now) / 1000) + 1;
			return true;
		}
		e->circuit = CIRCUIT_HALF_OPEN;
		e->trial = false;
	}
	if (e->circuit == CIRCUIT_HALF_OPEN && e->trial)
	{
		*wait_ms = 1000;
		return true;
	}
	for (int i = 0; i < e->nwindows; i++)
	{
		advance(&e->w[i], now_ms);
		if (window_sum(&e->w[i]) >= (uint64) e->w[i].limit)
		{
			*wait_ms = Max(*wait_ms, window_wait(&e->w[i], now_ms));
			return true;
		}
	}
	return false;
}

/*
 * Keys of this database that would refuse a request now (palloc'd
 * strings).  Keys too long to be held whole are not named: their jobs are
 * refused by synchub_ratelimit_acquire() instead.
 */
List *
synchub_ratelimit_blocked_keys(TimestampTz now)
{
	RlShared   *s = state();
	List	   *keys = NIL;
	char		(*found)[RL_KEY_LEN] = palloc(sizeof(char[RL_KEY_LEN]) * RL_KEYS);
	int			n = 0;
	long		wait;

	rl_lock(s, LW_EXCLUSIVE);
	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (e->in_use && e->dboid == MyDatabaseId && e->key.len < RL_KEY_LEN && refused(e, now, &wait))
			memcpy(found[n++], e->key.text, RL_KEY_LEN);
	}
	rl_unlock(s);
	for (int i = 0; i < n; i++)
		keys = lappend(keys, pstrdup(found[i]));
	pfree(found);
	return keys;
}

/*
 * Take a request's place in key's windows.  False, with the time to wait,
 * when the key refuses it now.
 */
bool
synchub_ratelimit_acquire(const char *key, TimestampTz now, long *wait_ms)
{
	RlShared   *s = state();
	RlKey		k;
	RlLocal    *lw;
	RlEntry    *e;
	bool		ok = true;

	*wait_ms = 0;
	make_key(key, &k);
	lw = local_find(&k);
	rl_lock(s, LW_EXCLUSIVE);
	/* a key with windows needs its entry; one without has nothing to check */
	e = lookup(s, &k, lw != NULL, now, lw);
	if (e)
	{
		e->last_used = now;
		if (refused(e, now, wait_ms))
			ok = false;
		else
		{
			for (int i = 0; i < e->nwindows; i++)
				e->w[i].counts[e->w[i].last_slot % RL_SLOTS]++;
			if (e->circuit == CIRCUIT_HALF_OPEN)
				e->trial = true;
		}
	}
	else if (lw)
	{
		/* every entry holds live state: wait rather than run unlimited */
		ok = false;
		*wait_ms = RL_FULL_WAIT_MS;
	}
	rl_unlock(s);
	return ok;
}

/*
 * A request that took its place at "taken" leaves only now: count it now
 * instead, so that the windows hold what the server will see (the jobs
 * claimed together are sent only once their claim commits).
 */
void
synchub_ratelimit_restamp(const char *key, TimestampTz taken, TimestampTz now)
{
	RlShared   *s = state();
	RlKey		k;
	RlEntry    *e;
	int64		then_ms = ms_of(taken);
	int64		now_ms = ms_of(now);

	make_key(key, &k);
	rl_lock(s, LW_EXCLUSIVE);
	e = lookup(s, &k, false, now, NULL);
	for (int i = 0; e != NULL && i < e->nwindows; i++)
	{
		RlWindow   *w = &e->w[i];
		int64		slot = then_ms / w->slot_ms;

		advance(w, now_ms);
		if (slot == w->last_slot || w->last_slot - slot >= RL_SLOTS || w->counts[slot % RL_SLOTS] == 0)
			continue;
		w->counts[slot % RL_SLOTS]--;
		w->counts[w->last_slot % RL_SLOTS]++;
	}
	rl_unlock(s);
}

/*
 * What a response (or failure) says: throttling and the breaker.  When no
 * entry is free the news is dropped (the key's requests are counted on
 * its entry if it has windows, and an entry with live state stays).
 */
void
synchub_ratelimit_observe(const char *key, SynchubRateEvent event,
						  TimestampTz blocked_until, TimestampTz now)
{
	RlShared   *s = state();
	RlKey		k;
	RlLocal    *lw;
	RlEntry    *e;

	make_key(key, &k);
	lw = local_find(&k);
	rl_lock(s, LW_EXCLUSIVE);
	e = lookup(s, &k, event == SYNCHUB_RATE_FAILURE || blocked_until > now, now, lw);
	if (e)
	{
		e->last_used = now;
		if (blocked_until > e->blocked_until)
			e->blocked_until = blocked_until;
		if (event == SYNCHUB_RATE_SUCCESS)
		{
			e->failures = 0;
			e->circuit = CIRCUIT_CLOSED;
			e->trial = false;
		}
		else if (event == SYNCHUB_RATE_FAILURE)
		{
			e->failures++;
			if (e->circuit == CIRCUIT_HALF_OPEN || e->failures >= synchub_circuit_failures)
			{
				e->circuit = CIRCUIT_OPEN;
				e->opened_at = now;
				e->trial = false;
			}
		}
		else if (e->circuit == CIRCUIT_HALF_OPEN)
			e->trial = false;
	}
	rl_unlock(s);
}

/*
 * synchub.circuits: the state of every key of this database (a key too
 * long to be held whole shows cut).
 */
PG_FUNCTION_INFO_V1(synchub_circuits);
Datum
synchub_circuits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RlShared   *s;
	RlEntry    *copy;
	int			n = 0;
	static const char *const names[] = {"closed", "open", "half-open"};
	TimestampTz now = GetCurrentTimestamp();

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	{
		TupleDesc	desc;
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);

		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		rsinfo->returnMode = SFRM_Materialize;
		rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
		rsinfo->setDesc = CreateTupleDescCopy(desc);
		MemoryContextSwitchTo(old);
	}
#endif
	if (!preloaded)
		PG_RETURN_VOID();
	s = state();
	copy = palloc(sizeof(RlEntry) * RL_KEYS);
	rl_lock(s, LW_SHARED);
	for (int i = 0; i < RL_KEYS; i++)
		if (s->e[i].in_use && s->e[i].dboid == MyDatabaseId)
			copy[n++] = s->e[i];
	rl_unlock(s);
	for (int i = 0; i < n; i++)
	{
		RlEntry    *e = &copy[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		const char *st = names[e->circuit];

		if (e->circuit == CIRCUIT_OPEN &&
			TimestampTzPlusMilliseconds(e->opened_at, synchub_circuit_cooldown) <= now)
			st = "half-open";
		values[0] = CStringGetTextDatum(e->key.text);
		values[1] = CStringGetTextDatum(st);
		values[2] = Int32GetDatum(e->failures);
		values[3] = TimestampTzGetDatum(e->opened_at);
		nulls[3] = e->circuit == CIRCUIT_CLOSED;
		values[4] = TimestampTzGetDatum(e->blocked_until);
		nulls[4] = e->blocked_until <= now;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
