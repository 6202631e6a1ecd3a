
-------------------------------------------------------------------------------
-- Worker
--
-- With shared_preload_libraries = 'synchub' a launcher keeps one worker per
-- database where the extension is installed; without it start_worker()
-- starts one for the current database.  The worker runs the jobs of queue
-- 'synchub' whose kind it implements (http).
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.start_worker() RETURNS boolean
    AS 'MODULE_PATHNAME', 'synchub_start_worker'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub.start_worker() FROM PUBLIC;
COMMENT ON FUNCTION synchub.start_worker() IS
    'start the worker of the current database; false when it is already running';

CREATE FUNCTION synchub.stop_worker() RETURNS boolean
    AS 'MODULE_PATHNAME', 'synchub_stop_worker'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub.stop_worker() FROM PUBLIC;
COMMENT ON FUNCTION synchub.stop_worker() IS
    'stop the worker of the current database until start_worker() or a server restart; false when none was running';

CREATE FUNCTION synchub._wake_worker(queue text) RETURNS void
    AS 'MODULE_PATHNAME', 'synchub_wake_worker'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._wake_worker(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._wake_worker(text) IS
    'internal: wake the worker when this transaction commits if queue is the worker''s';

CREATE FUNCTION synchub._extension_created() RETURNS void
    AS 'MODULE_PATHNAME', 'synchub_extension_created'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._extension_created() FROM PUBLIC;
COMMENT ON FUNCTION synchub._extension_created() IS
    'internal: have the launcher look for new databases when this transaction commits';

-- The new database gets its worker as soon as CREATE EXTENSION commits.
SELECT synchub._extension_created();
