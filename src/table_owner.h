/*-------------------------------------------------------------------------
 * table_owner.h
 *    Running a write as the owner of the table it writes.
 *-------------------------------------------------------------------------
 */
#ifndef SYNCHUB_TABLE_OWNER_H
#define SYNCHUB_TABLE_OWNER_H

#include "postgres.h"

typedef struct SynchubUserSave
{
	Oid			owner;			/* the table's owner, run as */
	Oid			user;
	int			sec_context;
	int			guc_nest;
} SynchubUserSave;

extern void synchub_become_table_owner(Oid relid, SynchubUserSave *save);
extern void synchub_restore_user(const SynchubUserSave *save);
extern void synchub_as_caller(const SynchubUserSave *save);
extern void synchub_as_table_owner_again(const SynchubUserSave *save);

#endif							/* SYNCHUB_TABLE_OWNER_H */
