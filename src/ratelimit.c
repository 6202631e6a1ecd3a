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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "ratelimit.h"

#define RL_KEYS		256
#define RL_KEY_LEN	128
#define RL_WINDOWS	4
#define RL_SLOTS	65			/* 64 slots per window, plus the current one */

typedef enum
{
	CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN
} CircuitState;

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
	bool		configured;		/* seen in the last configuration pass */
	Oid			dboid;
	char		key[RL_KEY_LEN];
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
	slock_t		mutex;
	RlEntry		e[RL_KEYS];
} RlShared;

int			synchub_circuit_failures = 5;
int			synchub_circuit_cooldown = 30000;

static bool preloaded = false;
static RlShared *rl = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;

static void
rl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(RlShared));
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
		LWLockRelease(AddinShmemInitLock);
	}
	else
		rl = MemoryContextAlloc(TopMemoryContext, sizeof(RlShared));
	if (!found)
	{
		memset(rl, 0, sizeof(RlShared));
		SpinLockInit(&rl->mutex);
	}
	return rl;
}

/* The entry of key in this database; created (evicting the stalest) if asked. */
static RlEntry *
lookup(RlShared *s, const char *key, bool create, TimestampTz now)
{
	RlEntry    *victim = NULL;

	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (e->in_use && e->dboid == MyDatabaseId && strcmp(e->key, key) == 0)
			return e;
		if (!e->in_use)
		{
			if (victim == NULL || victim->in_use)
				victim = e;
		}
		else if (!e->configured && (victim == NULL || (victim->in_use && e->last_used < victim->last_used)))
			victim = e;
	}
	if (!create || victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(RlEntry));
	victim->in_use = true;
	victim->dboid = MyDatabaseId;
	strlcpy(victim->key, key, RL_KEY_LEN);
	victim->last_used = now;
	return victim;
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

/* Set key's windows (this database); resets the counts when they change. */
void
synchub_ratelimit_configure(const char *key, int nwindows, const int *limits, const int *per_ms)
{
	RlShared   *s = state();
	RlEntry    *e;
	bool		same;

	nwindows = Min(nwindows, RL_WINDOWS);
	SpinLockAcquire(&s->mutex);
	e = lookup(s, key, true, GetCurrentTimestamp());
	if (e)
	{
		same = e->nwindows == nwindows;
		for (int i = 0; same && i < nwindows; i++)
			same = e->w[i].limit == limits[i] && e->w[i].per_ms == per_ms[i];
		if (!same)
		{
			/*
			 * New windows start with the requests the old ones still held,
			 * counted as made now: a change of budget is no burst.
			 */
			int64		now_ms = ms_of(GetCurrentTimestamp());
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
		e->configured = true;
	}
	SpinLockRelease(&s->mutex);
}

/*
 * End of a configuration pass: keys of this database that were not
 * configured lose their windows.  The next pass starts unmarked.
 */
void
synchub_ratelimit_configure_done(void)
{
	RlShared   *s = state();

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (!e->in_use || e->dboid != MyDatabaseId)
			continue;
		if (!e->configured)
			e->nwindows = 0;
		e->configured = false;
	}
	SpinLockRelease(&s->mutex);
}

/* Would a request for e be refused now?  (Lock held.) */
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

/* Keys of this database that would refuse a request now (palloc'd strings). */
List *
synchub_ratelimit_blocked_keys(TimestampTz now)
{
	RlShared   *s = state();
	List	   *keys = NIL;
	char		(*found)[RL_KEY_LEN] = palloc(sizeof(char[RL_KEY_LEN]) * RL_KEYS);
	int			n = 0;
	long		wait;

	SpinLockAcquire(&s->mutex);
	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &s->e[i];

		if (e->in_use && e->dboid == MyDatabaseId && refused(e, now, &wait))
			memcpy(found[n++], e->key, RL_KEY_LEN);
	}
	SpinLockRelease(&s->mutex);
	for (int i = 0; i < n; i++)
		keys = lappend(keys, pstrdup(found[i]));
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
	RlEntry    *e;
	bool		ok = true;

	*wait_ms = 0;
	SpinLockAcquire(&s->mutex);
	e = lookup(s, key, false, now);
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
	SpinLockRelease(&s->mutex);
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
	RlEntry    *e;
	int64		then_ms = ms_of(taken);
	int64		now_ms = ms_of(now);

	SpinLockAcquire(&s->mutex);
	e = lookup(s, key, false, now);
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
	SpinLockRelease(&s->mutex);
}

/* What a response (or failure) says: throttling and the breaker. */
void
synchub_ratelimit_observe(const char *key, SynchubRateEvent event,
						  TimestampTz blocked_until, TimestampTz now)
{
	RlShared   *s = state();
	RlEntry    *e;

	SpinLockAcquire(&s->mutex);
	e = lookup(s, key, event == SYNCHUB_RATE_FAILURE || blocked_until > now, now);
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
	SpinLockRelease(&s->mutex);
}

/* synchub.circuits: the state of every key of this database. */
PG_FUNCTION_INFO_V1(synchub_circuits);
Datum
synchub_circuits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RlShared   *s;
	RlEntry    *copy = palloc(sizeof(RlEntry) * RL_KEYS);
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
	SpinLockAcquire(&s->mutex);
	memcpy(copy, s->e, sizeof(RlEntry) * RL_KEYS);
	SpinLockRelease(&s->mutex);
	for (int i = 0; i < RL_KEYS; i++)
	{
		RlEntry    *e = &copy[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		const char *st = names[e->circuit];

		if (!e->in_use || e->dboid != MyDatabaseId)
			continue;
		if (e->circuit == CIRCUIT_OPEN &&
			TimestampTzPlusMilliseconds(e->opened_at, synchub_circuit_cooldown) <= now)
			st = "half-open";
		values[0] = CStringGetTextDatum(e->key);
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
