-------------------------------------------------------------------------------
-- Request planner and page parser, driven by a provider spec
--
-- The worker's loop for one sync job is:
--     req  := synchub._provider_next_request(integration_id, mode, checkpoint)
--             (the C entry point providers_next_request adds the real credential)
--     resp := HTTP(req)
--     page := synchub._provider_parse_page(provider, mode, req->'checkpoint',
--                                          status, headers, body)
--     rows := synchub._provider_map_rows(integration_id, page->'records')
--     upsert rows; job checkpoint := page->'checkpoint'; commit; NOTIFY
--     until page->'done' (then store page->'bookmark' in synchub.sync_state)
-- Both functions are pure given their arguments (the planner reads the
-- integration, its provider and its bookmark); docs/connectors.md describes
-- the checkpoint and the classified errors.
-------------------------------------------------------------------------------

-- An integration's row, or an error if it does not exist (or is hidden by
-- row-level security).
CREATE FUNCTION synchub._integration_row(integration_id bigint) RETURNS synchub.integrations
LANGUAGE plpgsql STABLE AS $$
DECLARE
    i synchub.integrations;
BEGIN
    SELECT * INTO i FROM synchub.integrations WHERE id = integration_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist', integration_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN i;
END
$$;
REVOKE ALL ON FUNCTION synchub._integration_row(bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._integration_row(bigint) IS 'internal: an integration''s row by id, or an error';

-- A timestamp as fixed-format UTC text (independent of the session's TimeZone).
CREATE FUNCTION synchub._ts_text(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
REVOKE ALL ON FUNCTION synchub._ts_text(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION synchub._ts_text(timestamptz) IS 'internal: a timestamp as UTC ISO 8601 text with microseconds';

-- A bookmark as the provider's filter value.
CREATE FUNCTION synchub._format_since(ts timestamptz, format text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE format
           WHEN 'epoch_ms' THEN floor(extract(epoch FROM ts) * 1000)::bigint::text
           WHEN 'iso8601_seconds' THEN to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
           ELSE to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
           END
$$;
REVOKE ALL ON FUNCTION synchub._format_since(timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._format_since(timestamptz, text) IS 'internal: a timestamp in a provider''s filter format (epoch_ms, iso8601, iso8601_seconds)';

-- A provider's modification time; NULL when absent or not in the format.
-- A time without a zone is UTC.
CREATE FUNCTION synchub._parse_updated(v text, format text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
           WHEN v IS NULL THEN NULL
           WHEN format = 'epoch_ms' AND v ~ '^[0-9]{1,15}$' THEN to_timestamp(v::numeric / 1000)
           WHEN format IN ('iso8601', 'utc_naive')
                AND v ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$'
                THEN CASE WHEN v ~ '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$' THEN v::timestamptz
                          ELSE v::timestamp AT TIME ZONE 'UTC' END
           END
$$;
REVOKE ALL ON FUNCTION synchub._parse_updated(text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._parse_updated(text, text) IS 'internal: a provider''s modification time (iso8601, utc_naive, epoch_ms) as timestamptz, NULL if unreadable';

-- Percent-encoding of a query string component (RFC 3986 unreserved kept).
CREATE FUNCTION synchub._url_encode(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(CASE WHEN c ~ '^[A-Za-z0-9._~-]$' THEN c
                                    ELSE regexp_replace(upper(encode(convert_to(c, 'UTF8'), 'hex')), '(..)', '%\1', 'g')
                               END, '' ORDER BY i), '')
      FROM regexp_split_to_table(v, '') WITH ORDINALITY AS t(c, i)
$$;
REVOKE ALL ON FUNCTION synchub._url_encode(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._url_encode(text) IS 'internal: percent-encode a URL query component';

-- The text of a template variable: arrays joined with commas.
CREATE FUNCTION synchub._template_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
           WHEN 'array' THEN (SELECT string_agg(e, ',') FROM jsonb_array_elements_text(v) e)
           WHEN 'null' THEN ''
           ELSE v #>> '{}' END
$$;
REVOKE ALL ON FUNCTION synchub._template_text(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._template_text(jsonb) IS 'internal: a template variable as text';

-- Fill a template: a string that is exactly "{name}" becomes the variable's
-- value; "{name}" inside a longer string becomes its text, with "\" and "'"
-- escaped by a backslash (the quoting of SOQL string literals).  Unknown
-- names are left as they are.
CREATE FUNCTION synchub._template(t jsonb, vars jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s text;
    k text;
    v jsonb;
BEGIN
    CASE jsonb_typeof(t)
    WHEN 'string' THEN
        s := t #>> '{}';
        IF s ~ '^\{[a-z_]+\}$' AND vars ? substr(s, 2, length(s) - 2) THEN
            RETURN vars -> substr(s, 2, length(s) - 2);
        END IF;
        IF s ~ '\{[a-z_]+\}' THEN
            FOR k, v IN SELECT * FROM jsonb_each(vars) LOOP
                s := replace(s, '{' || k || '}',
                             replace(replace(synchub._template_text(v), '\', '\\'), '''', '\'''));
            END LOOP;
        END IF;
        RETURN to_jsonb(s);
    WHEN 'object' THEN
        RETURN (SELECT coalesce(jsonb_object_agg(e.key, synchub._template(e.value, vars)), '{}')
                  FROM jsonb_each(t) e);
    WHEN 'array' THEN
        RETURN (SELECT coalesce(jsonb_agg(synchub._template(e.value, vars) ORDER BY e.i), '[]')
                  FROM jsonb_array_elements(t) WITH ORDINALITY e(value, i));
    ELSE
        RETURN t;
    END CASE;
END
$$;
REVOKE ALL ON FUNCTION synchub._template(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._template(jsonb, jsonb) IS 'internal: fill a request template with variables';

-------------------------------------------------------------------------------
-- Planner
-------------------------------------------------------------------------------

-- A planned request as the worker takes it: the credential's place (a
-- "[redacted]" placeholder in a header or the query), the timeout, the
-- integration's rate windows and the checkpoint planned with it.
CREATE FUNCTION synchub._provider_envelope(spec jsonb, options jsonb, method text, url text, headers jsonb,
                                           body jsonb, request_rate_limit jsonb, checkpoint jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    h jsonb := headers;
    u text := url;
BEGIN
    CASE spec #>> '{auth,style}'
    WHEN 'bearer' THEN
        h := h || jsonb_build_object('Authorization', 'Bearer [redacted]');
    WHEN 'header' THEN
        h := h || jsonb_build_object(spec #>> '{auth,name}', '[redacted]');
    ELSE
        u := u || CASE WHEN u ~ '\?' THEN '&' ELSE '?' END || (spec #>> '{auth,name}') || '=[redacted]';
    END CASE;
    RETURN jsonb_build_object(
        'method', method, 'url', u, 'headers', h, 'body', body,
        'timeout_ms', coalesce((options->>'timeout_ms')::integer, 30000),
        'rate_limit', coalesce(options->'rate_limit', spec #> '{rate_limit,windows}'),
        'request_rate_limit', request_rate_limit,
        'auth', jsonb_build_object(
            'style', spec #>> '{auth,style}',
            'name', CASE WHEN spec #>> '{auth,style}' = 'bearer' THEN 'Authorization' ELSE spec #>> '{auth,name}' END,
            'credential', CASE jsonb_typeof(spec #> '{auth,credential}') WHEN 'string'
                               THEN jsonb_build_array(spec #> '{auth,credential}') ELSE spec #> '{auth,credential}' END),
        'checkpoint', checkpoint);
END
$$;
REVOKE ALL ON FUNCTION synchub._provider_envelope(jsonb, jsonb, text, text, jsonb, jsonb, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_envelope(jsonb, jsonb, text, text, jsonb, jsonb, jsonb, jsonb) IS
    'internal: a planned provider request with the credential''s place redacted, timeout, rate windows and checkpoint';

-- The next request of a sync run.  Pure: everything comes in as arguments.
-- checkpoint NULL (or of another mode) starts a run; bookmark is the
-- integration's stored {"since", "since_id"}.  The credential is a
-- "[redacted]" placeholder; "auth" says where the real one goes.
CREATE FUNCTION synchub._provider_plan(spec jsonb, base_url text, options jsonb, mode text,
                                       checkpoint jsonb, bookmark jsonb, now timestamptz) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    ck      jsonb := checkpoint;
    phases  jsonb := spec #> ARRAY['modes', mode];
    rname   text;
    r       jsonb;
    pg      jsonb;
    psize   integer;
    vars    jsonb;
    query   jsonb;
    body    jsonb;
    headers jsonb;
    url     text;
    method  text;
    cur     text;
    origin  text := substring(base_url FROM '^https?://[^/]+');
    since   text;
BEGIN
    IF phases IS NULL THEN
        RAISE EXCEPTION 'mode "%" has no requests in the provider spec', mode
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Requests are planned for modes full and incremental.';
    END IF;
    IF ck IS NULL OR ck = '{}' OR ck->>'mode' IS DISTINCT FROM mode THEN
        since := CASE WHEN mode = 'incremental' AND bookmark->>'since' IS NOT NULL
                      THEN bookmark->>'since' ELSE '1970-01-01T00:00:00.000000Z' END;
        ck := jsonb_build_object(
            'mode', mode, 'phase', 0, 'cursor', NULL,
            'since', since,
            'since_id', CASE WHEN mode = 'incremental' THEN bookmark->'since_id' END,
            'start_since', since,
            'start_since_id', CASE WHEN mode = 'incremental' THEN bookmark->'since_id' END,
            'run_started_at', synchub._ts_text(now),
            'lookback_seconds', coalesce((options->>'lookback_seconds')::integer,
                                         (spec #>> '{incremental,lookback_seconds}')::integer, 0),
            'read', 0, 'slice_base', 0, 'slice_read', 0,
            'max_seen', NULL, 'max_seen_id', NULL, 'last_ts', NULL, 'last_id', NULL);
    END IF;
    IF (ck->>'phase')::integer >= jsonb_array_length(phases) THEN
        RAISE EXCEPTION 'the checkpoint is past the last page of the run'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    rname := phases ->> (ck->>'phase')::integer;
    r := spec #> ARRAY['requests', rname];
    pg := r->'pagination';
    psize := least(coalesce((options->>'page_size')::integer, (r #>> '{page_size,default}')::integer),
                   (r #>> '{page_size,max}')::integer);
    ck := ck || jsonb_build_object('page_size', psize, 'request', rname);
    vars := jsonb_build_object(
        'page_size', psize,
        'properties', coalesce(options->'properties', spec->'properties', '[]'),
        'since', synchub._format_since((ck->>'since')::timestamptz, coalesce(r->>'since_format', 'iso8601')),
        'since_id', coalesce(ck->>'since_id', spec #>> '{incremental,initial_id}', ''));
    headers := jsonb_build_object('Accept', 'application/json') || synchub._template(coalesce(r->'headers', '{}'), vars);
    cur := ck->>'cursor';

    IF pg->>'style' = 'next_url' AND cur IS NOT NULL THEN
        IF cur ~ '^/' THEN
            url := origin || cur;
        ELSIF substring(cur FROM '^https?://[^/]+') = origin THEN
            url := cur;
        ELSE
            RAISE EXCEPTION 'the next page URL is not on the integration''s host'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Credentials are only ever sent to the base URL''s host.';
        END IF;
        method := 'GET';
    ELSE
        method := r->>'method';
        query := synchub._template(coalesce(r->'query', '{}'), vars);
        body := synchub._template(r->'body', vars);
        IF cur IS NOT NULL THEN
            IF pg->>'style' = 'cursor' AND pg->>'in' = 'body' THEN
                body := body || jsonb_build_object(pg->>'param', cur);
            ELSE
                query := query || jsonb_build_object(pg->>'param', cur);
            END IF;
        END IF;
        url := base_url || (r->>'path');
        IF query <> '{}' THEN
            url := url || '?' || (SELECT string_agg(synchub._url_encode(q.key) || '=' ||
                                                    synchub._url_encode(synchub._template_text(q.value)), '&')
                                    FROM jsonb_each(query) q);
        END IF;
        IF body IS NOT NULL THEN
            headers := headers || jsonb_build_object('Content-Type', 'application/json');
        END IF;
    END IF;

    RETURN synchub._provider_envelope(spec, options, method, url, headers, body, r->'rate_limit', ck);
END
$$;
REVOKE ALL ON FUNCTION synchub._provider_plan(jsonb, text, jsonb, text, jsonb, jsonb, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_plan(jsonb, text, jsonb, text, jsonb, jsonb, timestamptz) IS
    'internal: the next HTTP request of a sync run from a provider spec (credential redacted)';

CREATE FUNCTION synchub._provider_next_request(integration_id bigint, mode text, checkpoint jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i synchub.integrations;
    s jsonb;
    b jsonb;
BEGIN
    IF mode = 'export' THEN
        RETURN synchub._export_plan(integration_id, checkpoint);
    END IF;
    i := synchub._integration_row(integration_id);
    SELECT p.spec INTO s FROM synchub.providers p WHERE p.name = i.provider;
    SELECT st.bookmark INTO b FROM synchub.sync_state st WHERE st.integration_id = i.id;
    RETURN synchub._provider_plan(s, i.base_url, i.options, mode, checkpoint, b, now());
END
$$;
REVOKE ALL ON FUNCTION synchub._provider_next_request(bigint, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_next_request(bigint, text, jsonb) IS
    'internal: the next HTTP request of an integration''s sync run, credential shown as [redacted]';

-------------------------------------------------------------------------------
-- Parser
-------------------------------------------------------------------------------

-- Rate-limit signals in response headers (names lower case).
CREATE FUNCTION synchub._rate_info(spec jsonb, headers jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    h   jsonb := coalesce(spec #> '{rate_limit,headers}', '{}');
    ra  text := headers->>(h->>'retry_after');
    m   text[] := regexp_match(headers->>(h->>'usage'), 'api-usage=([0-9]+)/([0-9]+)');
    num text := '^[0-9]{1,15}$';
BEGIN
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'retry_after_ms', CASE WHEN ra ~ num THEN ra::bigint * 1000
                               WHEN ra ~ '^[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT$'
                               THEN greatest(0, floor(extract(epoch FROM ra::timestamptz - now()) * 1000))::bigint END,
        'limit', CASE WHEN headers->>(h->>'limit') ~ num THEN (headers->>(h->>'limit'))::bigint END,
        'remaining', CASE WHEN headers->>(h->>'remaining') ~ num THEN (headers->>(h->>'remaining'))::bigint END,
        'reset_ms', CASE WHEN headers->>(h->>'reset') ~ num THEN (headers->>(h->>'reset'))::bigint * 1000 END,
        'interval_ms', CASE WHEN headers->>(h->>'interval_ms') ~ num THEN (headers->>(h->>'interval_ms'))::bigint END,
        'daily_remaining', CASE WHEN headers->>(h->>'daily_remaining') ~ num THEN (headers->>(h->>'daily_remaining'))::bigint END,
        'used', m[1]::bigint,
        'max', m[2]::bigint));
END
$$;
REVOKE ALL ON FUNCTION synchub._rate_info(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._rate_info(jsonb, jsonb) IS 'internal: rate-limit headers of a response as {retry_after_ms, limit, remaining, reset_ms, interval_ms, daily_remaining, used, max}';

-- The first of one or more paths that has a value in doc.
CREATE FUNCTION synchub._first_path(doc jsonb, paths jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT doc #>> synchub._json_path(p)
      FROM jsonb_array_elements_text(CASE jsonb_typeof(paths) WHEN 'array' THEN paths
                                     WHEN 'string' THEN jsonb_build_array(paths) ELSE '[]' END)
           WITH ORDINALITY AS t(p, i)
     WHERE doc #>> synchub._json_path(p) IS NOT NULL AND jsonb_typeof(doc) IN ('object', 'array')
     ORDER BY i LIMIT 1
$$;
REVOKE ALL ON FUNCTION synchub._first_path(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._first_path(jsonb, jsonb) IS 'internal: the value at the first of several field paths that has one';

-- A failed response, classified: auth (refresh the token once, then
-- retry), rate_limited (wait wait_ms, or back off), quota (pause the
-- integration), retryable, restart (retry from the last committed record
-- without the cursor), fatal.
CREATE FUNCTION synchub._classify_error(spec jsonb, status integer, body jsonb, rate jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    code  text := synchub._first_path(body, spec #> '{errors,code}');
    msg   text := left(synchub._first_path(body, spec #> '{errors,message}'), 500);
    cls   text;
BEGIN
    SELECT ru->>'class' INTO cls
      FROM jsonb_array_elements(coalesce(spec #> '{errors,rules}', '[]')) WITH ORDINALITY AS t(ru, i)
     WHERE (NOT ru ? 'status' OR (ru->>'status')::integer = status)
       AND (NOT ru ? 'code' OR ru->>'code' = code)
     ORDER BY i LIMIT 1;
    cls := coalesce(cls, CASE WHEN status = 401 THEN 'auth'
                              WHEN status = 429 THEN 'rate_limited'
                              WHEN status IN (408, 425) OR status >= 500 OR status IS NULL THEN 'retryable'
                              ELSE 'fatal' END);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'class', cls, 'status', status, 'code', code,
        'message', coalesce(msg, CASE WHEN status IS NULL THEN 'no response' ELSE format('HTTP status %s', status) END),
        'refresh', CASE WHEN cls = 'auth' THEN spec ? 'oauth' END,
        'wait_ms', CASE WHEN cls = 'rate_limited' THEN coalesce(rate->'retry_after_ms', rate->'reset_ms') END));
END
$$;
REVOKE ALL ON FUNCTION synchub._classify_error(jsonb, integer, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._classify_error(jsonb, integer, jsonb, jsonb) IS 'internal: classify a failed provider response';

-- The bookmark a finished run leaves for the next incremental sync:
-- min(max seen, run start) minus the look-back.  With no look-back and
-- nothing newer than the run start, the (updated_at, id) of the last record
-- is kept so the next run starts right after it.
CREATE FUNCTION synchub._next_bookmark(ck jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    seen  timestamptz := (ck->>'max_seen')::timestamptz;
    start timestamptz := (ck->>'run_started_at')::timestamptz;
    lb    interval := make_interval(secs => coalesce((ck->>'lookback_seconds')::integer, 0));
    b     timestamptz;
BEGIN
    IF seen IS NULL THEN
        RETURN jsonb_build_object('since', ck->'start_since', 'since_id', ck->'start_since_id');
    END IF;
    IF lb = interval '0' AND seen <= start AND ck->>'max_seen_id' IS NOT NULL THEN
        RETURN jsonb_build_object('since', synchub._ts_text(seen), 'since_id', ck->'max_seen_id');
    END IF;
    b := least(seen, start) - lb;
    IF b <= (ck->>'start_since')::timestamptz THEN
        RETURN jsonb_build_object('since', ck->'start_since', 'since_id', ck->'start_since_id');
    END IF;
    RETURN jsonb_build_object('since', synchub._ts_text(b), 'since_id', NULL);
END
$$;
REVOKE ALL ON FUNCTION synchub._next_bookmark(jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._next_bookmark(jsonb) IS 'internal: the incremental bookmark left by a finished run';

CREATE FUNCTION synchub._provider_parse_page(provider text, mode text, checkpoint jsonb, status integer,
                                             headers jsonb, body jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    spec    jsonb;
    ck      jsonb := checkpoint;
    phases  jsonb;
    r       jsonb;
    pg      jsonb;
    hdr     jsonb;
    rate    jsonb;
    recs    jsonb;
    n       integer;
    total   bigint;
    nxt     text;
    pdone   boolean;
    keyset  boolean;
    fmt     text;
    last_ts timestamptz;
    last_id text;
    page_max timestamptz;
    upath   text[];
    cap     bigint;
    done    boolean := false;
    err     jsonb;
BEGIN
    SELECT p.spec INTO spec FROM synchub.providers p WHERE p.name = provider;
    IF mode = 'export' THEN
        RETURN synchub._export_parse(spec, checkpoint, status, headers, body);
    END IF;
    IF spec IS NULL THEN
        RAISE EXCEPTION 'provider "%" does not exist', provider
            USING ERRCODE = 'undefined_object';
    END IF;
    phases := spec #> ARRAY['modes', mode];
    IF ck IS NULL OR ck->>'mode' IS DISTINCT FROM mode OR phases IS NULL
       OR (ck->>'phase')::integer >= jsonb_array_length(phases) THEN
        RAISE EXCEPTION 'the checkpoint does not belong to a planned request of mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the "checkpoint" returned by synchub._provider_next_request.';
    END IF;
    r := spec #> ARRAY['requests', phases ->> (ck->>'phase')::integer];
    pg := r->'pagination';
    keyset := coalesce((r->>'keyset')::boolean, false);
    fmt := spec #>> '{record,updated_at_format}';
    SELECT coalesce(jsonb_object_agg(lower(h.key), h.value), '{}') INTO hdr FROM jsonb_each(coalesce(headers, '{}')) h;
    rate := synchub._rate_info(spec, hdr);

    IF status IS NULL OR status NOT BETWEEN 200 AND 299 THEN
        err := synchub._classify_error(spec, status, body, rate);
        IF err->>'class' = 'restart' THEN
            ck := ck || jsonb_build_object('cursor', NULL, 'slice_read', 0, 'slice_base', ck->'read')
                     || CASE WHEN ck->>'last_ts' IS NOT NULL
                             THEN jsonb_build_object('since', ck->'last_ts', 'since_id', ck->'last_id')
                             ELSE '{}' END;
        END IF;
        RETURN jsonb_build_object('error', err, 'rate', rate, 'checkpoint', ck);
    END IF;

    recs := CASE WHEN jsonb_typeof(body) IN ('object', 'array') THEN body #> synchub._json_path(r->>'records') END;
    IF recs IS NULL OR jsonb_typeof(recs) = 'null' THEN
        recs := '[]';
    ELSIF jsonb_typeof(recs) <> 'array' THEN
        RETURN jsonb_build_object('error', jsonb_build_object('class', 'fatal', 'status', status,
                   'message', format('the records at "%s" are not an array', r->>'records')),
                   'rate', rate, 'checkpoint', ck);
    END IF;
    n := jsonb_array_length(recs);
    IF r->>'total' IS NOT NULL AND body #>> synchub._json_path(r->>'total') ~ '^[0-9]{1,18}$' THEN
        total := (body #>> synchub._json_path(r->>'total'))::bigint;
    END IF;

    -- Position and high-water mark
    upath := synchub._json_path(spec #>> '{record,updated_at}');
    SELECT max(synchub._parse_updated(e #>> upath, fmt)) INTO page_max FROM jsonb_array_elements(recs) e;
    IF n > 0 THEN
        last_ts := synchub._parse_updated(recs -> (n - 1) #>> upath, fmt);
        last_id := recs -> (n - 1) #>> synchub._json_path(spec #>> '{record,id}');
    END IF;
    IF keyset AND last_ts IS NOT NULL THEN
        ck := ck || jsonb_build_object('last_ts', synchub._ts_text(last_ts), 'last_id', last_id);
        IF ck->>'max_seen' IS NULL OR last_ts >= (ck->>'max_seen')::timestamptz THEN
            ck := ck || jsonb_build_object('max_seen', synchub._ts_text(last_ts), 'max_seen_id', last_id);
        END IF;
    ELSIF page_max IS NOT NULL AND (ck->>'max_seen' IS NULL OR page_max > (ck->>'max_seen')::timestamptz) THEN
        ck := ck || jsonb_build_object('max_seen', synchub._ts_text(page_max), 'max_seen_id', NULL);
    END IF;
    ck := ck || jsonb_build_object('read', (ck->>'read')::bigint + n, 'slice_read', (ck->>'slice_read')::bigint + n);

    -- Next position
    IF pg ? 'next' THEN
        nxt := body #>> synchub._json_path(pg->>'next');
    END IF;
    pdone := CASE pg->>'style'
             WHEN 'none' THEN true
             WHEN 'next_url' THEN nxt IS NULL OR nxt = '' OR (pg ? 'done' AND (body #> synchub._json_path(pg->>'done')) = 'true')
             WHEN 'offset' THEN nxt IS NULL OR nxt = '' OR (pg ? 'more' AND (body #> synchub._json_path(pg->>'more')) IS DISTINCT FROM 'true')
             ELSE nxt IS NULL OR nxt = '' END
             OR n = 0;
    cap := (r->>'result_cap')::bigint;
    IF NOT pdone AND keyset AND cap IS NOT NULL AND last_ts IS NOT NULL
       AND (ck->>'slice_read')::bigint + (ck->>'page_size')::bigint > cap THEN
        -- The query cannot page further: start a new one after the last record.
        ck := ck || jsonb_build_object('cursor', NULL, 'since', ck->'last_ts', 'since_id', ck->'last_id',
                                       'slice_read', 0, 'slice_base', ck->'read');
    ELSIF NOT pdone THEN
        ck := ck || jsonb_build_object('cursor', nxt);
    ELSE
        ck := ck || jsonb_build_object('phase', (ck->>'phase')::integer + 1, 'cursor', NULL,
                                       'since', ck->'start_since', 'since_id', ck->'start_since_id',
                                       'slice_read', 0, 'slice_base', ck->'read', 'last_ts', NULL, 'last_id', NULL);
        done := (ck->>'phase')::integer >= jsonb_array_length(phases);
    END IF;

    RETURN jsonb_build_object(
        'records', recs, 'count', n, 'checkpoint', ck, 'done', done,
        'records_total', CASE WHEN total IS NOT NULL
                              THEN (checkpoint->>'slice_base')::bigint + total END,
        'max_updated_at', ck->'max_seen', 'max_id', ck->'max_seen_id',
        'rate', rate,
        'bookmark', CASE WHEN done THEN synchub._next_bookmark(ck) END);
END
$$;
REVOKE ALL ON FUNCTION synchub._provider_parse_page(text, text, jsonb, integer, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_parse_page(text, text, jsonb, integer, jsonb, jsonb) IS
    'internal: records, next checkpoint, progress and rate signals of one response page, or a classified error';

-------------------------------------------------------------------------------
-- Record mapping
-------------------------------------------------------------------------------

-- Provider records as rows of the integration's target table: integration_id,
-- external_id, the field map's columns, and remote_updated_at and archived
-- when the target has them and the field map does not set them.  The
-- per-record expression is built once per call (paths resolved, values
-- quoted) and run over the whole array.
CREATE FUNCTION synchub._provider_map_records(plan jsonb, records jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_provider_map_records'
    LANGUAGE C STRICT IMMUTABLE;
REVOKE ALL ON FUNCTION synchub._provider_map_records(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_map_records(jsonb, jsonb) IS
    'internal: records mapped to row objects per a plan of _provider_map_rows (src/providers_map.c)';

CREATE FUNCTION synchub._provider_map_rows(integration_id bigint, records jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    i       synchub.integrations;
    spec    jsonb;
    fmap    jsonb;
    target  regclass;
    cols    text[];
    plan    jsonb;
BEGIN
    IF jsonb_typeof(records) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'records must be a JSON array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    i := synchub._integration_row(integration_id);
    SELECT p.spec INTO spec FROM synchub.providers p WHERE p.name = i.provider;
    target := coalesce(i.options->>'target', 'synchub.contacts')::regclass;
    fmap := synchub._effective_field_map(spec, i.options);
    SELECT array_agg(a.attname::text) INTO cols FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped;

    -- One entry per column of the row (src/providers_map.c).
    plan := jsonb_build_array(
        jsonb_build_object('col', 'integration_id', 'const', i.id),
        jsonb_build_object('col', 'external_id', 'kind', 'text', 'path', spec #>> '{record,id}'));
    IF 'remote_updated_at' = ANY (cols) AND NOT fmap ? 'remote_updated_at' THEN
        plan := plan || jsonb_build_object('col', 'remote_updated_at', 'kind', 'updated',
                                           'path', spec #>> '{record,updated_at}',
                                           'format', spec #>> '{record,updated_at_format}');
    END IF;
    IF 'archived' = ANY (cols) AND NOT fmap ? 'archived' THEN
        plan := plan || CASE WHEN spec #> '{record}' ? 'archived'
                             THEN jsonb_build_object('col', 'archived', 'kind', 'archived',
                                                     'path', spec #>> '{record,archived}')
                             ELSE jsonb_build_object('col', 'archived', 'const', false) END;
    END IF;
    SELECT plan || coalesce(jsonb_agg(jsonb_build_object('col', m.key, 'kind', 'value',
                                                         'path', m.value) ORDER BY m.key), '[]')
      INTO plan FROM jsonb_each_text(fmap) m;
    RETURN synchub._provider_map_records(plan, records);
END
$$;
REVOKE ALL ON FUNCTION synchub._provider_map_rows(bigint, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_map_rows(bigint, jsonb) IS
    'internal: provider records as row objects of the integration''s target table (field map applied)';
