/*-------------------------------------------------------------------------
 * upsert_planner.c
 *    While bulk upsert plans its statement, the planner sees only the
 *    unique index of the upsert key on the target: the per-record probe
 *    must be a lookup on that key.  On a table without statistics (just
 *    created, or loading) the planner otherwise ties it with any index
 *    that shares the leading column, such as synchub.contacts'
 *    (integration_id, remote_updated_at), and a probe that walks every row
 *    of the integration makes the upsert quadratic.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "nodes/pathnodes.h"
#include "optimizer/plancat.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "upsert_internal.h"

static get_relation_info_hook_type prev_get_relation_info = NULL;
static const UpsertTarget *planning = NULL;

/* Is ix a unique index on exactly the upsert key's columns (by name)? */
static bool
is_key_index(Oid relid, IndexOptInfo *ix, const UpsertTarget *t)
{
	if (!ix->unique || ix->indpred != NIL || ix->nkeycolumns != t->nkeys)
		return false;
	for (int i = 0; i < ix->nkeycolumns; i++)
	{
		char	   *name;
		bool		found = false;

		if (ix->indexkeys[i] <= 0)
			return false;
		name = get_attname(relid, ix->indexkeys[i], false);
		for (int k = 0; k < t->nkeys && !found; k++)
			found = strcmp(name, t->cols[t->keycols[k]].name) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Is relid the upsert's target, or a partition of it? */
static bool
is_target(Oid relid, const UpsertTarget *t)
{
	Oid			target = RelationGetRelid(t->rel);

	if (relid == target)
		return true;
	return t->partitioned && get_rel_relispartition(relid) &&
		list_member_oid(get_partition_ancestors(relid), target);
}

static void
keep_key_index(PlannerInfo *root, Oid relid, bool inhparent, RelOptInfo *rel)
{
	List	   *keep = NIL;
	ListCell   *lc;

	if (prev_get_relation_info)
		prev_get_relation_info(root, relid, inhparent, rel);
	if (planning == NULL || !is_target(relid, planning))
		return;
	foreach(lc, rel->indexlist)
	{
		IndexOptInfo *ix = (IndexOptInfo *) lfirst(lc);

		if (is_key_index(relid, ix, planning))
			keep = lappend(keep, ix);
	}
	if (keep != NIL)
		rel->indexlist = keep;
}

void
upsert_planner_init(void)
{
	prev_get_relation_info = get_relation_info_hook;
	get_relation_info_hook = keep_key_index;
}

/*
 * While t is set, plans of its target (or a partition of it) see only the
 * unique index on the upsert key's columns; other relations, such as those
 * a trigger reads, are planned as usual.  Set it around the planning and
 * the execution (which may replan) of the upsert statement; reset it
 * (NULL) after, on error as well.
 */
void
upsert_planner_set(const UpsertTarget *t)
{
	planning = t;
}
