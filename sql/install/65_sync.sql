
-------------------------------------------------------------------------------
-- Sync execution: the worker's view of integrations (rate keys and budgets)
-- and the integration health view.
-------------------------------------------------------------------------------

-- The rate-limit key of a job: the host of an http job's URL, the
-- integration of a sync job (its budget is shared by all its jobs).
CREATE FUNCTION synchub._job_rate_key(kind text, payload jsonb, integration_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN kind = 'http' THEN synchub._rate_key(payload->>'url')
                WHEN integration_id IS NOT NULL THEN 'integration:' || integration_id END
$$;
REVOKE ALL ON FUNCTION synchub._job_rate_key(text, jsonb, bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._job_rate_key(text, jsonb, bigint) IS
    'internal: the rate-limit key of a job (http: the URL''s host; sync: integration:<id>)';

-- The windows of a rate_limit value: one window object or an array of
-- them; anything else has none.
CREATE FUNCTION synchub._rate_windows(rate_limit jsonb, OUT requests integer, OUT per_ms integer)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (w->>'requests')::integer, greatest(1, round((w->>'per_seconds')::numeric * 1000))::integer
      FROM jsonb_array_elements(CASE jsonb_typeof(rate_limit) WHEN 'array' THEN rate_limit
                                                              WHEN 'object' THEN jsonb_build_array(rate_limit)
                                                              ELSE '[]' END) w
$$;
REVOKE ALL ON FUNCTION synchub._rate_windows(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._rate_windows(jsonb) IS
    'internal: the windows (requests per per_ms milliseconds) of a rate_limit object or array';

-- Every rate window the worker enforces: synchub.rate_limits, and per
-- integration its option rate_limit or else its provider's documented
-- windows (the first 4 by length).
CREATE VIEW synchub._worker_rate_limits AS
    SELECT r.key, r.requests, r.per_seconds * 1000 AS per_ms
      FROM synchub.rate_limits r
    UNION ALL
    SELECT 'integration:' || i.id, w.requests, w.per_ms
      FROM synchub.integrations i
      JOIN synchub.providers p ON p.name = i.provider
     CROSS JOIN LATERAL synchub._rate_windows(coalesce(i.options->'rate_limit', p.spec #> '{rate_limit,windows}')) w
    UNION ALL
    -- a request's own windows (HubSpot search: 5 per second), on top of the account's
    SELECT 'integration:' || i.id || ':' || r.key, w.requests, w.per_ms
      FROM synchub.integrations i
      JOIN synchub.providers p ON p.name = i.provider
     CROSS JOIN LATERAL jsonb_each(p.spec->'requests') r
     CROSS JOIN LATERAL synchub._rate_windows(r.value->'rate_limit') w;
REVOKE ALL ON synchub._worker_rate_limits FROM PUBLIC;
COMMENT ON VIEW synchub._worker_rate_limits IS
    'internal: the rate windows of every key the worker limits: rate_limits, integrations, and integration:<id>:<request> for requests with their own (per_ms: window length in milliseconds)';

-- One row per integration the caller may see (member of its owner role).
-- The counts and the p50/p95 cover the last 24 hours (the current UTC hour and
-- the 24 before it, from synchub.api_latency).  The view reads the tables
-- with its owner's rights and filters rows itself, so it is a security
-- barrier: a caller's own (leaky) function in WHERE runs only on the rows
-- the view lets through, never on another role's.
CREATE VIEW synchub.integration_health WITH (security_barrier) AS
    SELECT i.id, i.name, i.provider, i.status, i.status_reason, i.paused_until,
           s.last_sync_at, s.last_sync_status, s.last_error,
           coalesce(c.state, 'closed') AS circuit,
           coalesce(l.requests, 0) AS requests,
           coalesce(l.rate_limited, 0) AS rate_limited,
           coalesce(l.errors, 0) AS errors,
           round(synchub.quantile(l.latency, 0.5)::numeric, 1) AS p50_latency_ms,
           round(synchub.quantile(l.latency, 0.95)::numeric, 1) AS p95_latency_ms
      FROM synchub.integrations i
      LEFT JOIN synchub.sync_state s ON s.integration_id = i.id
      LEFT JOIN synchub._circuits() c ON c.key = 'integration:' || i.id
      LEFT JOIN LATERAL (
          SELECT sum(a.requests)::bigint AS requests, sum(a.rate_limited)::bigint AS rate_limited,
                 sum(a.errors)::bigint AS errors,
                 synchub.sketch_merge(a.latency) AS latency
            FROM synchub.api_latency a
           WHERE a.integration_id = i.id
             AND a.hour >= date_trunc('hour', now(), 'UTC') - interval '24 hours') l ON true
     WHERE pg_catalog.pg_has_role(i.owner, 'USAGE');
REVOKE ALL ON synchub.integration_health FROM PUBLIC;
COMMENT ON VIEW synchub.integration_health IS
    'per integration: status, last sync, circuit of its rate key, requests, rate-limited and failed calls and p50/p95 latency over the last 24 hours';
