
-------------------------------------------------------------------------------
-- Job guard: a job names only its own role's integrations
--
-- The worker runs the sync jobs of queue synchub (full_import,
-- incremental_sync, export) as the extension owner, for the integration
-- named by the job's integration_id, and the sync machinery dedups them
-- under 'integration:<id>:<mode>' keys (synchub._enqueue_sync).  Any role
-- that may enqueue could otherwise name another role's integration (the
-- worker would sync it) or take its dedup keys first (its sync() would then
-- fail with 23505 for as long as the squatting job stays unfinished).
--
-- This trigger refuses, with SQLSTATE 42501:
--   * a job whose integration_id is not an integration of its owner role:
--     the integration's owner must be the job's owner or a role the job's
--     owner is a member of (pg_has_role ... 'MEMBER'; a superuser is a
--     member of every role).  The lookup runs with the rights of the role
--     that writes the job, under row-level security: an integration that
--     role cannot see, or that does not exist, is refused like another
--     role's.  Only a job owned by a superuser may name an id no row holds
--     (the superuser is a member of whatever role owns it now or later).
--   * a dedup key starting with 'integration:' that does not start with
--     'integration:<the job's own integration_id>:'.
-- It also refuses an export job (queue synchub) without the dedup key
-- 'integration:<id>:export', which keeps one export of an integration at a
-- time.  It fires only for rows with an integration_id or such a dedup key
-- (the WHEN clause), so plain enqueues do not pay for it, and on UPDATE only
-- when integration_id, dedup_key, owner, queue or kind is assigned (not on
-- claims, progress, retries and pauses).  It is SECURITY INVOKER like every function here.
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._job_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    integration_owner regrole;
    seen boolean := false;
    why text;
BEGIN
    IF NEW.integration_id IS NOT NULL THEN
        IF pg_catalog.has_column_privilege('synchub.integrations', 'id', 'SELECT')
           AND pg_catalog.has_column_privilege('synchub.integrations', 'owner', 'SELECT') THEN
            SELECT i.owner INTO integration_owner
              FROM synchub.integrations i WHERE i.id = NEW.integration_id;
            seen := FOUND;
            IF NOT seen THEN
                why := format('Role %s cannot see an integration with this id: it does not exist '
                              'or belongs to a role that %s is not a member of.', current_user, current_user);
            END IF;
        ELSE
            why := format('Role %s may not read synchub.integrations.', current_user);
        END IF;
        IF seen THEN
            IF integration_owner <> NEW.owner
               AND NOT pg_catalog.pg_has_role(NEW.owner::oid, integration_owner::oid, 'MEMBER') THEN
                why := format('The integration belongs to role %s, and the job''s owner %s is not a member of it.',
                              integration_owner, NEW.owner);
            END IF;
        ELSIF coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = NEW.owner), false) THEN
            why := NULL;
        END IF;
        IF why IS NOT NULL THEN
            RAISE EXCEPTION 'job refused: integration % is not one of role %''s integrations',
                            NEW.integration_id, NEW.owner
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = why,
                      HINT = 'A job may name only an integration of its owner role (or of a role its owner is a member of).';
        END IF;
    END IF;
    IF NEW.dedup_key LIKE 'integration:%'
       AND (NEW.integration_id IS NULL
            OR NOT pg_catalog.starts_with(NEW.dedup_key, 'integration:' || NEW.integration_id || ':')) THEN
        RAISE EXCEPTION 'job refused: dedup key "%" is reserved for the jobs of another integration', NEW.dedup_key
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = CASE WHEN NEW.integration_id IS NULL
                                THEN 'A dedup key starting with "integration:" needs a job with an integration_id.'
                                ELSE format('The dedup keys starting with "integration:" of a job must start with '
                                            '"integration:%s:", its own integration_id.', NEW.integration_id) END,
                  HINT = 'Keys "integration:<id>:..." belong to the syncs of integration <id>; choose another dedup key.';
    END IF;
    -- One export of an integration at a time: two would send the same
    -- outbox entries twice.  Its dedup key makes it unique while unfinished.
    IF NEW.queue = 'synchub' AND NEW.kind = 'export' AND NEW.integration_id IS NOT NULL
       AND NEW.dedup_key IS DISTINCT FROM 'integration:' || NEW.integration_id || ':export' THEN
        RAISE EXCEPTION 'job refused: an export job of integration % needs the dedup key "integration:%:export"',
                        NEW.integration_id, NEW.integration_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Enqueue exports with synchub.sync(integration, ''export'').';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION synchub._job_guard() FROM PUBLIC;
COMMENT ON FUNCTION synchub._job_guard() IS
    'internal: trigger refusing a job that names an integration of another role, or another integration''s dedup key';

CREATE TRIGGER job_queue_guard
    BEFORE INSERT OR UPDATE OF integration_id, dedup_key, owner, queue, kind ON synchub.job_queue
    FOR EACH ROW
    WHEN (NEW.integration_id IS NOT NULL OR NEW.dedup_key LIKE 'integration:%')
    EXECUTE FUNCTION synchub._job_guard();
