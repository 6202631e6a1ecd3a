/*-------------------------------------------------------------------------
 * compat.h
 *    Differences between the PostgreSQL versions synchub builds against
 *    (14 to 18), kept in one place.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_COMPAT_H
#define SYNCHUB_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 140000
#error "synchub needs PostgreSQL 14 or later"
#endif

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#define synchub_random_double() pg_prng_double(&pg_global_prng_state)
#else
#define synchub_random_double() ((double) random() / ((double) MAX_RANDOM_VALUE + 1))
#endif

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#if PG_VERSION_NUM >= 160000
#include "utils/acl.h"
#include "catalog/pg_database.h"
#define synchub_database_ownercheck(dboid, roleid) object_ownercheck(DatabaseRelationId, dboid, roleid)
#else
#include "utils/acl.h"
#define synchub_database_ownercheck(dboid, roleid) pg_database_ownercheck(dboid, roleid)
#endif

#include "fmgr.h"

extern void synchub_init_materialized_srf(FunctionCallInfo fcinfo);

#endif							/* SYNCHUB_COMPAT_H */
