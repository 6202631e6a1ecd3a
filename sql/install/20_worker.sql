
-------------------------------------------------------------------------------
-- Worker
--
-- With shared_preload_libraries = 'synchub' a launcher keeps one worker per
-- database where the extension is installed; without it start_worker()
-- starts one for the current database.  The worker runs the jobs of queue
-- 'synchub' whose kind it implements (http, full_import, incremental_sync,
-- export).
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

-------------------------------------------------------------------------------
-- Rate limits and circuit breakers
-------------------------------------------------------------------------------

CREATE TABLE synchub.rate_limits (
    key         text    NOT NULL,
    requests    integer NOT NULL,
    per_seconds integer NOT NULL,
    PRIMARY KEY (key, per_seconds),
    CONSTRAINT rate_limits_key_check CHECK (key <> '' AND length(key) < 128),
    CONSTRAINT rate_limits_requests_check CHECK (requests >= 1),
    CONSTRAINT rate_limits_per_seconds_check CHECK (per_seconds BETWEEN 1 AND 86400)
);
REVOKE ALL ON synchub.rate_limits FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('synchub.rate_limits', '');
COMMENT ON TABLE synchub.rate_limits IS
    'at most "requests" requests per "per_seconds" seconds to key (the host of an http job); up to 4 windows per key';

-- The worker keeps 4 windows per key: a fifth is refused rather than
-- silently left out.
CREATE FUNCTION synchub._rate_limits_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    SELECT r.key INTO k FROM synchub.rate_limits r GROUP BY r.key HAVING count(*) > 4 LIMIT 1;
    IF k IS NOT NULL THEN
        RAISE EXCEPTION 'too many rate windows for key "%"', k
            USING ERRCODE = 'check_violation',
                  DETAIL = 'A key has at most 4 windows (rows of different per_seconds).';
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION synchub._rate_limits_check() FROM PUBLIC;
COMMENT ON FUNCTION synchub._rate_limits_check() IS 'internal: refuses a fifth rate window for a key of synchub.rate_limits';
CREATE TRIGGER rate_limits_windows AFTER INSERT OR UPDATE ON synchub.rate_limits
    FOR EACH STATEMENT EXECUTE FUNCTION synchub._rate_limits_check();

-- The rate-limit key of a URL: its host, lower case, without user info or port.
CREATE FUNCTION synchub._rate_key(url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]/?#]*\]|[^:/?#]*)'))
$$;
REVOKE ALL ON FUNCTION synchub._rate_key(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._rate_key(text) IS 'internal: the rate-limit key (host) of a URL';

CREATE FUNCTION synchub._circuits(OUT key text, OUT state text, OUT consecutive_failures integer,
                                  OUT opened_at timestamptz, OUT blocked_until timestamptz)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'synchub_circuits'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._circuits() FROM PUBLIC;
COMMENT ON FUNCTION synchub._circuits() IS 'internal: rate-limit and circuit state of this database''s keys';

CREATE VIEW synchub.circuits AS SELECT * FROM synchub._circuits();
REVOKE ALL ON synchub.circuits FROM PUBLIC;
COMMENT ON VIEW synchub.circuits IS
    'circuit breaker (closed, open, half-open) and server-requested pause of each key the worker has seen';
