-------------------------------------------------------------------------------
-- Connectors: providers, integrations, credentials, contacts, schedules
--
-- A provider is data: synchub.providers holds one declarative jsonb spec per
-- CRM (docs/connectors.md documents every key).  A trigger validates a spec
-- on insert and update and names the first bad key.  An integration is one
-- account at one provider; its credentials live encrypted (AES-256-GCM, see
-- src/credentials.c) in a table only the extension owner can read.  The
-- request planner and page parser that turn a spec into HTTP requests are
-- in 63_provider_requests.sql, the presets in 61_provider_presets.sql,
-- integrations in 62_integrations.sql.
-------------------------------------------------------------------------------

CREATE TABLE synchub.providers (
    name text  PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    spec jsonb NOT NULL
);
REVOKE ALL ON synchub.providers FROM PUBLIC;
COMMENT ON TABLE synchub.providers IS 'CRM providers as declarative specs (docs/connectors.md); presets hubspot, salesforce, pipedrive';

-------------------------------------------------------------------------------
-- JSON paths: "properties.email", "emails[0].value", "[0].errorCode", "$"
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._json_path_valid(path text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT path IS NOT NULL AND length(path) <= 512
       AND (path = '$' OR path ~ '^(\[[0-9]+\]|[^.\[\]]+)(\[[0-9]+\])*(\.[^.\[\]]+(\[[0-9]+\])*)*$')
$$;
REVOKE ALL ON FUNCTION synchub._json_path_valid(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._json_path_valid(text) IS 'internal: whether a field path ("a.b", "a[0].b", "$") is well formed';

-- The path as a text[] for the #> operator ('$' is the whole value).
CREATE FUNCTION synchub._json_path(path text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN path = '$' THEN '{}'::text[]
                ELSE string_to_array(ltrim(regexp_replace(path, '\[([0-9]+)\]', '.\1', 'g'), '.'), '.')
           END
$$;
REVOKE ALL ON FUNCTION synchub._json_path(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._json_path(text) IS 'internal: a field path as a text[] for the #> operator';

-------------------------------------------------------------------------------
-- Spec validation
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._spec_fail(provider text, key text, expected text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION 'invalid spec for provider "%": key "%"', provider, key
        USING ERRCODE = 'invalid_parameter_value',
              DETAIL = format('"%s" %s.', key, expected);
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_fail(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_fail(text, text, text) IS 'internal: error naming the bad key of a provider spec';

-- Refuse keys of obj that are not in allowed; prefix names the object.
CREATE FUNCTION synchub._spec_keys(provider text, prefix text, obj jsonb, allowed text[],
                                   required text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    IF jsonb_typeof(obj) IS DISTINCT FROM 'object' THEN
        PERFORM synchub._spec_fail(provider, coalesce(nullif(prefix, ''), '(spec)'), 'must be a JSON object');
    END IF;
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        IF NOT k = ANY (allowed) THEN
            PERFORM synchub._spec_fail(provider, prefix || CASE WHEN prefix = '' THEN '' ELSE '.' END || k,
                                       format('is not a known key; known keys are %s', array_to_string(allowed, ', ')));
        END IF;
    END LOOP;
    FOREACH k IN ARRAY required LOOP
        IF NOT obj ? k THEN
            PERFORM synchub._spec_fail(provider, prefix || CASE WHEN prefix = '' THEN '' ELSE '.' END || k,
                                       'is required');
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_keys(text, text, jsonb, text[], text[]) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_keys(text, text, jsonb, text[], text[]) IS 'internal: refuse unknown or missing keys in a spec object';

CREATE FUNCTION synchub._spec_path(provider text, key text, value jsonb, nullable boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value IS NULL OR jsonb_typeof(value) = 'null' THEN
        IF NOT nullable THEN
            PERFORM synchub._spec_fail(provider, key, 'is required');
        END IF;
    ELSIF jsonb_typeof(value) <> 'string' OR NOT synchub._json_path_valid(value #>> '{}') THEN
        PERFORM synchub._spec_fail(provider, key, 'must be a field path such as "a.b" or "a[0].b"');
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_path(text, text, jsonb, boolean) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_path(text, text, jsonb, boolean) IS 'internal: check a field path in a provider spec';

CREATE FUNCTION synchub._spec_int(provider text, key text, value jsonb, lo numeric, hi numeric) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'number' OR value::numeric <> trunc(value::numeric)
       OR value::numeric < lo OR value::numeric > hi THEN
        PERFORM synchub._spec_fail(provider, key, format('must be an integer between %s and %s', lo, hi));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_int(text, text, jsonb, numeric, numeric) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_int(text, text, jsonb, numeric, numeric) IS 'internal: check an integer in a provider spec';

CREATE FUNCTION synchub._spec_enum(provider text, key text, value jsonb, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF jsonb_typeof(value) IS DISTINCT FROM 'string' OR NOT (value #>> '{}') = ANY (allowed) THEN
        PERFORM synchub._spec_fail(provider, key, format('must be one of %s', array_to_string(allowed, ', ')));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_enum(text, text, jsonb, text[]) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_enum(text, text, jsonb, text[]) IS 'internal: check an enumerated string in a provider spec';

-- A rate limit: one window {"requests": N, "per_seconds": S} or an array of
-- up to 4 (the worker keeps 4 windows per key).
CREATE FUNCTION synchub._rate_windows_valid(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(value)
           WHEN 'object' THEN synchub._rate_windows_valid(jsonb_build_array(value))
           WHEN 'array' THEN jsonb_array_length(value) BETWEEN 1 AND 4 AND NOT EXISTS (
                SELECT FROM jsonb_array_elements(value) w
                 WHERE jsonb_typeof(w) <> 'object'
                    OR EXISTS (SELECT FROM jsonb_object_keys(w) k WHERE k NOT IN ('requests', 'per_seconds'))
                    OR jsonb_typeof(w->'requests') IS DISTINCT FROM 'number'
                    OR jsonb_typeof(w->'per_seconds') IS DISTINCT FROM 'number'
                    OR (w->>'requests')::numeric < 1
                    OR (w->>'requests')::numeric <> trunc((w->>'requests')::numeric)
                    OR (w->>'per_seconds')::numeric <= 0
                    OR (w->>'per_seconds')::numeric > 86400)
           ELSE false END
$$;
REVOKE ALL ON FUNCTION synchub._rate_windows_valid(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._rate_windows_valid(jsonb) IS 'internal: whether a value is one rate window or an array of 1 to 4 of them';

CREATE FUNCTION synchub._spec_request(provider text, rname text, r jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    key text := 'requests.' || rname;
    pg  jsonb := r->'pagination';
BEGIN
    PERFORM synchub._spec_keys(provider, key, r,
        ARRAY['method', 'path', 'query', 'headers', 'body', 'page_size', 'pagination', 'records',
              'total', 'keyset', 'since_format', 'result_cap', 'rate_limit'],
        ARRAY['method', 'path', 'pagination', 'records']);
    PERFORM synchub._spec_enum(provider, key || '.method', r->'method', ARRAY['GET', 'POST']);
    IF jsonb_typeof(r->'path') IS DISTINCT FROM 'string' OR r->>'path' !~ '^/[^?#\s]*$' THEN
        PERFORM synchub._spec_fail(provider, key || '.path', 'must be a string starting with "/" without a query string');
    END IF;
    IF r ? 'query' AND (jsonb_typeof(r->'query') <> 'object' OR EXISTS (
            SELECT FROM jsonb_each(r->'query') q WHERE jsonb_typeof(q.value) <> 'string')) THEN
        PERFORM synchub._spec_fail(provider, key || '.query', 'must be an object of string templates');
    END IF;
    IF r ? 'headers' AND (jsonb_typeof(r->'headers') <> 'object' OR EXISTS (
            SELECT FROM jsonb_each(r->'headers') h WHERE jsonb_typeof(h.value) <> 'string'
                                                      OR h.key !~ '^[A-Za-z0-9-]+$')) THEN
        PERFORM synchub._spec_fail(provider, key || '.headers', 'must be an object of header names to string templates');
    END IF;
    IF r ? 'body' AND (r->>'method' = 'GET' OR jsonb_typeof(r->'body') <> 'object') THEN
        PERFORM synchub._spec_fail(provider, key || '.body', 'must be a JSON object, and only on a POST request');
    END IF;
    PERFORM synchub._spec_keys(provider, key || '.page_size', r->'page_size', ARRAY['default', 'max'], ARRAY['default', 'max']);
    PERFORM synchub._spec_int(provider, key || '.page_size.max', r #> '{page_size,max}', 1, 100000);
    PERFORM synchub._spec_int(provider, key || '.page_size.default', r #> '{page_size,default}', 1, (r #>> '{page_size,max}')::numeric);
    PERFORM synchub._spec_path(provider, key || '.records', r->'records');
    PERFORM synchub._spec_path(provider, key || '.total', r->'total', true);
    IF r ? 'keyset' AND jsonb_typeof(r->'keyset') <> 'boolean' THEN
        PERFORM synchub._spec_fail(provider, key || '.keyset', 'must be true or false');
    END IF;
    IF (r->'keyset') = 'true' THEN
        PERFORM synchub._spec_enum(provider, key || '.since_format', r->'since_format',
                                   ARRAY['iso8601', 'iso8601_seconds', 'epoch_ms']);
    ELSIF r ? 'since_format' OR r ? 'result_cap' THEN
        PERFORM synchub._spec_fail(provider, key || CASE WHEN r ? 'since_format' THEN '.since_format' ELSE '.result_cap' END,
                                   'is allowed only on a request with "keyset": true');
    END IF;
    IF r ? 'result_cap' THEN
        PERFORM synchub._spec_int(provider, key || '.result_cap', r->'result_cap', 1, 1e9);
    END IF;
    IF r ? 'rate_limit' AND NOT synchub._rate_windows_valid(r->'rate_limit') THEN
        PERFORM synchub._spec_fail(provider, key || '.rate_limit',
                                   'must be {"requests": N, "per_seconds": S} or an array of 1 to 4 of them');
    END IF;
    PERFORM synchub._spec_keys(provider, key || '.pagination', pg, ARRAY['style', 'next', 'param', 'in', 'done', 'more'], ARRAY['style']);
    PERFORM synchub._spec_enum(provider, key || '.pagination.style', pg->'style', ARRAY['cursor', 'next_url', 'offset', 'none']);
    IF pg->>'style' <> 'none' THEN
        PERFORM synchub._spec_path(provider, key || '.pagination.next', pg->'next');
    END IF;
    IF pg->>'style' IN ('cursor', 'offset') AND (jsonb_typeof(pg->'param') IS DISTINCT FROM 'string' OR pg->>'param' = '') THEN
        PERFORM synchub._spec_fail(provider, key || '.pagination.param', 'must name the query or body parameter that carries the position');
    END IF;
    IF pg ? 'in' THEN
        PERFORM synchub._spec_enum(provider, key || '.pagination.in', pg->'in', ARRAY['query', 'body']);
        IF pg->>'in' = 'body' AND NOT r ? 'body' THEN
            PERFORM synchub._spec_fail(provider, key || '.pagination.in', 'can be "body" only for a request with a body');
        END IF;
    END IF;
    PERFORM synchub._spec_path(provider, key || '.pagination.done', pg->'done', true);
    PERFORM synchub._spec_path(provider, key || '.pagination.more', pg->'more', true);
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_request(text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_request(text, text, jsonb) IS 'internal: check one request of a provider spec';

CREATE FUNCTION synchub._spec_check(provider text, s jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k   text;
    v   jsonb;
    r   jsonb;
    e   jsonb;
BEGIN
    PERFORM synchub._spec_keys(provider, '', s,
        ARRAY['description', 'auth', 'oauth', 'requests', 'modes', 'record', 'properties', 'field_map',
              'incremental', 'write', 'rate_limit', 'errors'],
        ARRAY['auth', 'requests', 'modes', 'record', 'field_map']);

    -- auth
    PERFORM synchub._spec_keys(provider, 'auth', s->'auth', ARRAY['style', 'name', 'credential'], ARRAY['style', 'credential']);
    PERFORM synchub._spec_enum(provider, 'auth.style', s #> '{auth,style}', ARRAY['bearer', 'header', 'query']);
    IF s #>> '{auth,style}' IN ('header', 'query') THEN
        IF jsonb_typeof(s #> '{auth,name}') IS DISTINCT FROM 'string' OR s #>> '{auth,name}' !~ '^[A-Za-z0-9_-]+$' THEN
            PERFORM synchub._spec_fail(provider, 'auth.name', 'must name the header or query parameter that carries the credential');
        END IF;
    ELSIF s #> '{auth}' ? 'name' THEN
        PERFORM synchub._spec_fail(provider, 'auth.name', 'is not used with style "bearer" (the header is Authorization)');
    END IF;
    v := s #> '{auth,credential}';
    IF jsonb_typeof(v) = 'string' THEN
        v := jsonb_build_array(v);
    END IF;
    IF jsonb_typeof(v) IS DISTINCT FROM 'array' OR jsonb_array_length(v) = 0 OR EXISTS (
            SELECT FROM jsonb_array_elements(v) c WHERE jsonb_typeof(c) <> 'string' OR c #>> '{}' = '') THEN
        PERFORM synchub._spec_fail(provider, 'auth.credential', 'must be a credentials key or an array of them (the first present is used)');
    END IF;

    -- oauth
    IF s ? 'oauth' THEN
        PERFORM synchub._spec_keys(provider, 'oauth', s->'oauth',
            ARRAY['token_url', 'params', 'access_token', 'refresh_token', 'expires_in'],
            ARRAY['token_url', 'params', 'access_token']);
        IF jsonb_typeof(s #> '{oauth,token_url}') IS DISTINCT FROM 'string'
           OR s #>> '{oauth,token_url}' !~ '^(/|https://)' THEN
            PERFORM synchub._spec_fail(provider, 'oauth.token_url', 'must be a path on the base URL or an https URL');
        END IF;
        IF jsonb_typeof(s #> '{oauth,params}') IS DISTINCT FROM 'object' OR EXISTS (
                SELECT FROM jsonb_each(s #> '{oauth,params}') p WHERE jsonb_typeof(p.value) <> 'string') THEN
            PERFORM synchub._spec_fail(provider, 'oauth.params', 'must be an object of form parameters to string templates');
        END IF;
        PERFORM synchub._spec_path(provider, 'oauth.access_token', s #> '{oauth,access_token}');
        PERFORM synchub._spec_path(provider, 'oauth.refresh_token', s #> '{oauth,refresh_token}', true);
        PERFORM synchub._spec_path(provider, 'oauth.expires_in', s #> '{oauth,expires_in}', true);
    END IF;

    -- requests
    IF jsonb_typeof(s->'requests') IS DISTINCT FROM 'object' OR s->'requests' = '{}' THEN
        PERFORM synchub._spec_fail(provider, 'requests', 'must be a non-empty object of named requests');
    END IF;
    FOR k, r IN SELECT * FROM jsonb_each(s->'requests') LOOP
        PERFORM synchub._spec_request(provider, k, r);
    END LOOP;

    -- modes: which requests run, in order, for a full import and an incremental sync
    PERFORM synchub._spec_keys(provider, 'modes', s->'modes', ARRAY['full', 'incremental'], ARRAY['full']);
    FOR k, v IN SELECT * FROM jsonb_each(s->'modes') LOOP
        IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 OR EXISTS (
                SELECT FROM jsonb_array_elements(v) p
                 WHERE jsonb_typeof(p) <> 'string' OR NOT s->'requests' ? (p #>> '{}')) THEN
            PERFORM synchub._spec_fail(provider, 'modes.' || k, 'must be a non-empty array of names from "requests"');
        END IF;
    END LOOP;
    IF s #> '{modes}' ? 'incremental' AND NOT EXISTS (
            SELECT FROM jsonb_array_elements_text(s #> '{modes,incremental}') p
             WHERE (s #> ARRAY['requests', p, 'keyset']) = 'true') THEN
        PERFORM synchub._spec_fail(provider, 'modes.incremental', 'must include a request with "keyset": true');
    END IF;

    -- record
    PERFORM synchub._spec_keys(provider, 'record', s->'record',
        ARRAY['id', 'updated_at', 'updated_at_format', 'archived'], ARRAY['id', 'updated_at', 'updated_at_format']);
    PERFORM synchub._spec_path(provider, 'record.id', s #> '{record,id}');
    PERFORM synchub._spec_path(provider, 'record.updated_at', s #> '{record,updated_at}');
    PERFORM synchub._spec_enum(provider, 'record.updated_at_format', s #> '{record,updated_at_format}',
                               ARRAY['iso8601', 'utc_naive', 'epoch_ms']);
    PERFORM synchub._spec_path(provider, 'record.archived', s #> '{record,archived}', true);

    IF s ? 'properties' AND (jsonb_typeof(s->'properties') <> 'array' OR EXISTS (
            SELECT FROM jsonb_array_elements(s->'properties') p WHERE jsonb_typeof(p) <> 'string')) THEN
        PERFORM synchub._spec_fail(provider, 'properties', 'must be an array of provider field names');
    END IF;

    IF jsonb_typeof(s->'field_map') IS DISTINCT FROM 'object' THEN
        PERFORM synchub._spec_fail(provider, 'field_map', 'must be an object of target column to field path');
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(s->'field_map') LOOP
        PERFORM synchub._spec_path(provider, 'field_map.' || k, v);
    END LOOP;

    IF s ? 'incremental' THEN
        PERFORM synchub._spec_keys(provider, 'incremental', s->'incremental', ARRAY['lookback_seconds', 'initial_id']);
        IF s #> '{incremental}' ? 'lookback_seconds' THEN
            PERFORM synchub._spec_int(provider, 'incremental.lookback_seconds', s #> '{incremental,lookback_seconds}', 0, 86400);
        END IF;
        IF s #> '{incremental}' ? 'initial_id' AND jsonb_typeof(s #> '{incremental,initial_id}') <> 'string' THEN
            PERFORM synchub._spec_fail(provider, 'incremental.initial_id', 'must be a string');
        END IF;
    END IF;

    -- write: the export endpoint
    IF s ? 'write' THEN
        PERFORM synchub._spec_keys(provider, 'write', s->'write',
            ARRAY['method', 'path', 'max_batch', 'body', 'record', 'key', 'key_field',
                  'update_method', 'update_path', 'result'],
            ARRAY['method', 'path', 'max_batch', 'record', 'result']);
        PERFORM synchub._spec_enum(provider, 'write.method', s #> '{write,method}', ARRAY['POST', 'PATCH', 'PUT']);
        FOR k IN SELECT unnest(ARRAY['path', 'update_path']) LOOP
            IF s->'write' ? k AND (jsonb_typeof(s #> ARRAY['write', k]) <> 'string'
                                   OR s #>> ARRAY['write', k] !~ '^/[^?#\s]*$') THEN
                PERFORM synchub._spec_fail(provider, 'write.' || k, 'must be a string starting with "/" without a query string');
            END IF;
        END LOOP;
        PERFORM synchub._spec_int(provider, 'write.max_batch', s #> '{write,max_batch}', 1, 10000);
        IF s #> '{write}' ? 'body' AND jsonb_typeof(s #> '{write,body}') <> 'object' THEN
            PERFORM synchub._spec_fail(provider, 'write.body', 'must be a JSON object template');
        END IF;
        IF (s #>> '{write,max_batch}')::integer > 1 AND position('"{records}"' IN coalesce(s #>> '{write,body}', '')) = 0 THEN
            PERFORM synchub._spec_fail(provider, 'write.body', 'must hold "{records}" when max_batch is above 1');
        END IF;
        IF jsonb_typeof(s #> '{write,record}') <> 'object' THEN
            PERFORM synchub._spec_fail(provider, 'write.record', 'must be a JSON object template');
        END IF;
        FOR k IN SELECT unnest(ARRAY['key', 'key_field']) LOOP
            IF s->'write' ? k AND jsonb_typeof(s #> ARRAY['write', k]) <> 'string' THEN
                PERFORM synchub._spec_fail(provider, 'write.' || k, 'must be a template string such as "{email}"');
            END IF;
        END LOOP;
        IF s #> '{write}' ? 'update_method' THEN
            PERFORM synchub._spec_enum(provider, 'write.update_method', s #> '{write,update_method}', ARRAY['POST', 'PATCH', 'PUT']);
        END IF;
        IF (s #> '{write}' ? 'update_method') <> (s #> '{write}' ? 'update_path') THEN
            PERFORM synchub._spec_fail(provider, 'write.update_path', 'and write.update_method go together');
        END IF;
        IF s #> '{write}' ? 'update_path' AND (s #>> '{write,max_batch}')::integer <> 1 THEN
            PERFORM synchub._spec_fail(provider, 'write.update_path', 'needs max_batch 1');
        END IF;
        e := s #> '{write,result}';
        PERFORM synchub._spec_keys(provider, 'write.result', e,
            ARRAY['style', 'results', 'errors', 'success', 'id', 'message', 'key', 'result_key'], ARRAY['style']);
        PERFORM synchub._spec_enum(provider, 'write.result.style', e->'style', ARRAY['in_order', 'errors_by_key', 'single']);
        FOR k IN SELECT unnest(ARRAY['results', 'errors', 'success', 'id', 'message', 'key', 'result_key']) LOOP
            PERFORM synchub._spec_path(provider, 'write.result.' || k, e->k, true);
        END LOOP;
        IF e->>'style' = 'errors_by_key' AND NOT (e ? 'key' AND e ? 'result_key' AND s #> '{write}' ? 'key') THEN
            PERFORM synchub._spec_fail(provider, 'write.result', 'with style errors_by_key needs key and result_key, and write.key');
        END IF;
        IF e->>'style' = 'single' AND (s #>> '{write,max_batch}')::integer <> 1 THEN
            PERFORM synchub._spec_fail(provider, 'write.result.style', 'single needs max_batch 1');
        END IF;
    END IF;

    -- rate_limit: the account's documented windows and the headers that report it
    IF s ? 'rate_limit' THEN
        PERFORM synchub._spec_keys(provider, 'rate_limit', s->'rate_limit', ARRAY['windows', 'headers']);
        IF s #> '{rate_limit}' ? 'windows' AND s #> '{rate_limit,windows}' <> '[]'
           AND NOT synchub._rate_windows_valid(s #> '{rate_limit,windows}') THEN
            PERFORM synchub._spec_fail(provider, 'rate_limit.windows',
                                       'must be {"requests": N, "per_seconds": S} or an array of 1 to 4 of them');
        END IF;
        IF s #> '{rate_limit}' ? 'headers' THEN
            PERFORM synchub._spec_keys(provider, 'rate_limit.headers', s #> '{rate_limit,headers}',
                ARRAY['retry_after', 'limit', 'remaining', 'reset', 'interval_ms', 'daily_remaining', 'usage']);
            FOR k, v IN SELECT * FROM jsonb_each(s #> '{rate_limit,headers}') LOOP
                IF jsonb_typeof(v) <> 'string' OR v #>> '{}' !~ '^[a-z0-9-]+$' THEN
                    PERFORM synchub._spec_fail(provider, 'rate_limit.headers.' || k, 'must be a lower-case header name');
                END IF;
            END LOOP;
        END IF;
    END IF;

    -- errors: where the message and code are, and how statuses are classified
    IF s ? 'errors' THEN
        PERFORM synchub._spec_keys(provider, 'errors', s->'errors', ARRAY['message', 'code', 'rules']);
        FOR k IN SELECT unnest(ARRAY['message', 'code']) LOOP
            v := s #> ARRAY['errors', k];
            IF v IS NOT NULL THEN
                IF jsonb_typeof(v) = 'string' THEN
                    v := jsonb_build_array(v);
                END IF;
                IF jsonb_typeof(v) <> 'array' THEN
                    PERFORM synchub._spec_fail(provider, 'errors.' || k, 'must be a field path or an array of them');
                END IF;
                FOR e IN SELECT * FROM jsonb_array_elements(v) LOOP
                    PERFORM synchub._spec_path(provider, 'errors.' || k, e);
                END LOOP;
            END IF;
        END LOOP;
        IF s #> '{errors}' ? 'rules' THEN
            IF jsonb_typeof(s #> '{errors,rules}') <> 'array' THEN
                PERFORM synchub._spec_fail(provider, 'errors.rules', 'must be an array of rules');
            END IF;
            FOR e, k IN SELECT r.value, format('errors.rules[%s]', r.i - 1)
                          FROM jsonb_array_elements(s #> '{errors,rules}') WITH ORDINALITY AS r(value, i) LOOP
                PERFORM synchub._spec_keys(provider, k, e, ARRAY['status', 'code', 'class'], ARRAY['class']);
                IF e ? 'status' THEN
                    PERFORM synchub._spec_int(provider, k || '.status', e->'status', 100, 599);
                END IF;
                IF e ? 'code' AND jsonb_typeof(e->'code') <> 'string' THEN
                    PERFORM synchub._spec_fail(provider, k || '.code', 'must be a string');
                END IF;
                PERFORM synchub._spec_enum(provider, k || '.class', e->'class',
                    ARRAY['auth', 'rate_limited', 'quota', 'retryable', 'restart', 'fatal']);
            END LOOP;
        END IF;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._spec_check(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._spec_check(text, jsonb) IS 'internal: validate a provider spec; the error names the first bad key';

CREATE FUNCTION synchub._providers_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM synchub._spec_check(NEW.name, NEW.spec);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION synchub._providers_check() FROM PUBLIC;
COMMENT ON FUNCTION synchub._providers_check() IS 'internal: trigger validating synchub.providers.spec';

CREATE TRIGGER providers_check BEFORE INSERT OR UPDATE ON synchub.providers
    FOR EACH ROW EXECUTE FUNCTION synchub._providers_check();
