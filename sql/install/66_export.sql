-------------------------------------------------------------------------------
-- Export: local changes to the rows of an integration whose option "export"
-- is true are captured by a trigger into synchub.outbox; an export run sends
-- them in batches to the provider's write endpoint, reads the per-record
-- results, writes the provider's ids back, keeps refused records in
-- synchub.rejects with the reason and splits a batch the provider refuses
-- as a whole (docs/connectors.md, "Export").
-------------------------------------------------------------------------------

-- One entry per changed row and integration: several changes before an
-- export coalesce, the row's state at export time is what is sent.  A change
-- made while the row is in flight bumps the version, so the entry stays and
-- the row goes again.
CREATE TABLE synchub.outbox (
    id             bigint      GENERATED ALWAYS AS IDENTITY,
    integration_id bigint      NOT NULL REFERENCES synchub.integrations (id) ON DELETE CASCADE,
    row_key        jsonb       NOT NULL,
    version        integer     NOT NULL DEFAULT 1,
    queued_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, row_key)
);
REVOKE ALL ON synchub.outbox FROM PUBLIC;
CREATE UNIQUE INDEX outbox_order_idx ON synchub.outbox (integration_id, id);
ALTER TABLE synchub.outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_integration ON synchub.outbox
    USING (EXISTS (SELECT FROM synchub.integrations i WHERE i.id = integration_id));
COMMENT ON TABLE synchub.outbox IS
    'rows changed locally and not yet exported, per integration: the primary key of the row in the integration''s target';
SELECT pg_catalog.pg_extension_config_dump('synchub.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.outbox_id_seq', '');

-- AFTER INSERT OR UPDATE FOR EACH ROW on a target; the arguments are the
-- target's primary key columns.  Nothing is captured while
-- synchub.capture_changes is off (the worker's own writes), for a row whose
-- update changed nothing, or for a row of an integration that does not
-- export into this table.
CREATE FUNCTION synchub._capture_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    j   jsonb;
    iid bigint;
BEGIN
    IF current_setting('synchub.capture_changes', true) = 'off' THEN
        RETURN NULL;
    END IF;
    j := to_jsonb(NEW);
    IF TG_OP = 'UPDATE' AND j = to_jsonb(OLD) THEN
        RETURN NULL;
    END IF;
    iid := (j->>'integration_id')::bigint;
    IF NOT EXISTS (SELECT FROM synchub.integrations i
                    WHERE i.id = iid AND i.options @> '{"export": true}'
                      AND coalesce(i.options->>'target', 'synchub.contacts')::regclass = TG_RELID) THEN
        RETURN NULL;
    END IF;
    INSERT INTO synchub.outbox AS o (integration_id, row_key)
    SELECT iid, jsonb_object_agg(c, j->c) FROM unnest(TG_ARGV) c
        ON CONFLICT (integration_id, row_key) DO UPDATE SET version = o.version + 1, queued_at = now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION synchub._capture_change() FROM PUBLIC;
COMMENT ON FUNCTION synchub._capture_change() IS
    'internal: trigger capturing changed rows of an exporting integration into synchub.outbox';

-- The primary key columns of a table, in key order.
CREATE FUNCTION synchub._primary_key(target regclass) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname::text ORDER BY k.n)
      FROM pg_catalog.pg_index i
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = target AND i.indisprimary
$$;
REVOKE ALL ON FUNCTION synchub._primary_key(regclass) FROM PUBLIC;
COMMENT ON FUNCTION synchub._primary_key(regclass) IS 'internal: the primary key columns of a table';

-- Put the capture trigger on a target (once).
CREATE FUNCTION synchub._export_install(target regclass) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    pk text[] := synchub._primary_key(target);
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = target AND t.tgname = 'synchub_export_capture') THEN
        RETURN;
    END IF;
    IF pk IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', target
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Export finds a changed row again by its primary key.';
    END IF;
    EXECUTE format('CREATE TRIGGER synchub_export_capture AFTER INSERT OR UPDATE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION synchub._capture_change(%s)',
                   target, (SELECT string_agg(quote_literal(c), ', ') FROM unnest(pk) c));
END
$$;
REVOKE ALL ON FUNCTION synchub._export_install(regclass) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_install(regclass) IS
    'internal: create the trigger capturing changes of a table for export, if it is not there';

-- The default target captures from the start (only rows of exporting
-- integrations are ever queued).
SELECT synchub._export_install('synchub.contacts');

-- The WHERE clause finding a row by its key ($1 holds the key as jsonb).
-- A write of an integration's target, run as the table's owner in a
-- security-restricted operation (src/table_owner.c): its triggers never run
-- with the worker's rights.
CREATE FUNCTION synchub._exec_as_table_owner(target regclass, sql text, p1 jsonb, p2 text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'synchub_exec_as_table_owner'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._exec_as_table_owner(regclass, text, jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._exec_as_table_owner(regclass, text, jsonb, text) IS
    'internal, extension owner only: run a write of target (parameters $1 jsonb, $2 text) as the table''s owner, restricted';

CREATE FUNCTION synchub._read_as_table_owner(target regclass, sql text, p1 jsonb, p2 text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_read_as_table_owner'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._read_as_table_owner(regclass, text, jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._read_as_table_owner(regclass, text, jsonb, text) IS
    'internal, extension owner only: the first jsonb of a query of target (parameters $1 jsonb, $2 text), run as the table''s owner, restricted';

CREATE FUNCTION synchub._row_key_where(target regclass, row_key jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('(%s) = (SELECT %s FROM jsonb_populate_record(NULL::%s, $1) k)',
                  string_agg('t.' || quote_ident(c), ', ' ORDER BY c),
                  string_agg('k.' || quote_ident(c), ', ' ORDER BY c), target)
      FROM jsonb_object_keys(row_key) c
$$;
REVOKE ALL ON FUNCTION synchub._row_key_where(regclass, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._row_key_where(regclass, jsonb) IS 'internal: WHERE clause matching a row by its key given as $1';

-- Fill a record template from a row: a string that is exactly "{column}"
-- becomes the column's JSON value; "{column}" inside a longer string its
-- text (NULL: nothing), the result trimmed and NULL when empty; an object in
-- an array whose placeholders are all NULL is left out.
CREATE FUNCTION synchub._export_fill(t jsonb, vars jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    s text;
BEGIN
    CASE jsonb_typeof(t)
    WHEN 'string' THEN
        s := t #>> '{}';
        IF s ~ '^\{[a-z_][a-z0-9_]*\}$' THEN
            RETURN coalesce(vars -> substr(s, 2, length(s) - 2), 'null');
        END IF;
        IF s !~ '\{[a-z_][a-z0-9_]*\}' THEN
            RETURN t;
        END IF;
        SELECT string_agg(CASE WHEN x.i % 2 = 0 THEN coalesce(vars ->> x.p, '') ELSE x.p END, '' ORDER BY x.i)
          INTO s
          FROM regexp_split_to_table(regexp_replace(s, '\{([a-z_][a-z0-9_]*)\}', chr(1) || '\1' || chr(1), 'g'), chr(1))
               WITH ORDINALITY AS x(p, i);
        RETURN coalesce(to_jsonb(nullif(btrim(s), '')), 'null');
    WHEN 'object' THEN
        RETURN (SELECT coalesce(jsonb_object_agg(e.key, synchub._export_fill(e.value, vars)), '{}')
                  FROM jsonb_each(t) e);
    WHEN 'array' THEN
        RETURN (SELECT coalesce(jsonb_agg(synchub._export_fill(e.value, vars) ORDER BY e.i), '[]')
                  FROM jsonb_array_elements(t) WITH ORDINALITY e(value, i)
                 WHERE NOT (jsonb_typeof(e.value) = 'object' AND e.value::text ~ '"\{[a-z_][a-z0-9_]*\}'
                            AND NOT EXISTS (SELECT FROM regexp_matches(e.value::text, '\{([a-z_][a-z0-9_]*)\}', 'g') m
                                             WHERE vars ->> m[1] IS NOT NULL)));
    ELSE
        RETURN t;
    END CASE;
END
$$;
REVOKE ALL ON FUNCTION synchub._export_fill(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_fill(jsonb, jsonb) IS 'internal: fill a write record template from a row';

-- The checkpoint with records handled added to "read" and to the run's
-- counts ("counts", kept as for imports; inserted: created at the provider).
CREATE FUNCTION synchub._export_counted(ck jsonb, inserted bigint, updated bigint, rejected bigint) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT ck || jsonb_build_object(
        'read', coalesce((ck->>'read')::bigint, 0) + inserted + updated + rejected,
        'counts', jsonb_build_object(
            'inserted', coalesce((ck #>> '{counts,inserted}')::bigint, 0) + inserted,
            'updated', coalesce((ck #>> '{counts,updated}')::bigint, 0) + updated,
            'unchanged', 0,
            'rejected', coalesce((ck #>> '{counts,rejected}')::bigint, 0) + rejected))
$$;
REVOKE ALL ON FUNCTION synchub._export_counted(jsonb, bigint, bigint, bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_counted(jsonb, bigint, bigint, bigint) IS
    'internal: an export checkpoint with more records read and counted';

-- Record a record that cannot be exported.
CREATE FUNCTION synchub._export_reject(i synchub.integrations, job_id bigint, external_id text,
                                       record jsonb, error text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO synchub.rejects (job_id, integration_id, target, external_id, record, error, owner)
    VALUES (job_id, i.id, coalesce(i.options->>'target', 'synchub.contacts')::regclass, external_id, record, error, i.owner)
$$;
REVOKE ALL ON FUNCTION synchub._export_reject(synchub.integrations, bigint, text, jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_reject(synchub.integrations, bigint, text, jsonb, text) IS
    'internal: keep a record an export could not write in synchub.rejects';

-- The next request of an export run, or {"done": true, "checkpoint"} when
-- nothing is left.  A run exports the entries queued when it started
-- ("upto"); a batch the provider refused as a whole comes back as two
-- halves in "split", sent first.  Rows deleted or archived since are
-- dropped from the outbox; rows without a key go to the rejects here.  The
-- request's checkpoint carries the batch for the parser.
CREATE FUNCTION synchub._export_plan(integration_id bigint, checkpoint jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i      synchub.integrations := synchub._integration_row(integration_id);
    spec   jsonb;
    w      jsonb;
    tgt    regclass := coalesce(i.options->>'target', 'synchub.contacts')::regclass;
    ck     jsonb := checkpoint;
    job    bigint;
    ids    bigint[];
    e      synchub.outbox;
    r      jsonb;
    vars   jsonb;
    key    text;
    rec    jsonb;
    batch  jsonb;
    one    jsonb;
    method text;
    path   text;
    body   jsonb;
BEGIN
    SELECT p.spec INTO spec FROM synchub.providers p WHERE p.name = i.provider;
    w := spec->'write';
    IF w IS NULL THEN
        RAISE EXCEPTION 'provider "%" has no write endpoint', i.provider USING ERRCODE = 'feature_not_supported';
    END IF;
    IF NOT coalesce((i.options->>'export')::boolean, false) THEN
        RAISE EXCEPTION 'integration "%" does not export', i.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set its option "export" to true first.';
    END IF;
    IF ck IS NULL OR ck->>'mode' IS DISTINCT FROM 'export' THEN
        SELECT jsonb_build_object('mode', 'export', 'upto', coalesce(max(o.id), 0), 'total', count(*),
                                  'read', 0, 'split', '[]'::jsonb,
                                  'run_started_at', synchub._ts_text(now()))
          INTO ck FROM synchub.outbox o WHERE o.integration_id = i.id;
    END IF;
    SELECT q.id INTO job FROM synchub.job_queue q
     WHERE q.integration_id = i.id AND q.kind = 'export' AND q.state = 'running' LIMIT 1;
    vars := jsonb_build_object('external_id_field', coalesce(i.options->>'external_id_field', 'Id'));
    LOOP
        IF jsonb_array_length(ck->'split') > 0 THEN
            ids := ARRAY(SELECT x::bigint FROM jsonb_array_elements_text(ck->'split'->0) x);
            ck := jsonb_set(ck, '{split}', (ck->'split') - 0);
        ELSE
            ids := ARRAY(SELECT o.id FROM synchub.outbox o
                          WHERE o.integration_id = i.id AND o.id <= (ck->>'upto')::bigint
                          ORDER BY o.id LIMIT (w->>'max_batch')::integer);
            IF cardinality(ids) = 0 THEN
                RETURN jsonb_build_object('done', true, 'checkpoint', ck);
            END IF;
        END IF;
        batch := '[]';
        FOR e IN SELECT o.* FROM synchub.outbox o WHERE o.integration_id = i.id AND o.id = ANY (ids) ORDER BY o.id LOOP
            -- read as the table's owner; only a row of this integration
            r := synchub._read_as_table_owner(tgt,
                     format('SELECT to_jsonb(t) FROM %s t WHERE %s AND t.integration_id = %s',
                            tgt, synchub._row_key_where(tgt, e.row_key), i.id),
                     e.row_key, NULL);
            IF r IS NULL OR coalesce((r->>'archived')::boolean, false) THEN
                DELETE FROM synchub.outbox o WHERE o.id = e.id AND o.version = e.version;
                CONTINUE;
            END IF;
            key := synchub._export_fill(to_jsonb(coalesce(i.options->>'write_key', w->>'key', '')), r) #>> '{}';
            IF w ? 'key' AND key IS NULL THEN
                PERFORM synchub._export_reject(i, job, r->>'external_id', r,
                    format('no value for the provider''s key %s', coalesce(i.options->>'write_key', w->>'key')));
                DELETE FROM synchub.outbox o WHERE o.id = e.id AND o.version = e.version;
                ck := synchub._export_counted(ck, 0, 0, 1);
                CONTINUE;
            END IF;
            rec := synchub._export_fill(w->'record', r);
            IF w ? 'key_field' THEN
                rec := rec || jsonb_build_object(synchub._export_fill(w->'key_field', vars) #>> '{}', key);
            END IF;
            batch := batch || jsonb_build_array(jsonb_build_object(
                'entry', e.id, 'v', e.version, 'row_key', e.row_key,
                'external_id', r->'external_id', 'key', key, 'record', rec));
        END LOOP;
        EXIT WHEN jsonb_array_length(batch) > 0;
    END LOOP;

    one := batch->0;
    IF w ? 'update_path' AND one->>'external_id' IS NOT NULL THEN
        method := w->>'update_method';
        path := w->>'update_path';
    ELSE
        method := w->>'method';
        path := w->>'path';
    END IF;
    path := replace(replace(path, '{external_id_field}', synchub._url_encode(vars->>'external_id_field')),
                    '{external_id}', synchub._url_encode(coalesce(one->>'external_id', '')));
    body := CASE WHEN w ? 'body'
                 THEN synchub._template(w->'body', jsonb_build_object(
                          'records', (SELECT jsonb_agg(b->'record' ORDER BY n) FROM jsonb_array_elements(batch) WITH ORDINALITY x(b, n))))
                 ELSE one->'record' END;
    RETURN synchub._provider_envelope(spec, i.options, method, i.base_url || path,
                                      jsonb_build_object('Accept', 'application/json', 'Content-Type', 'application/json'),
                                      body, NULL, ck || jsonb_build_object('batch', batch));
END
$$;
REVOKE ALL ON FUNCTION synchub._export_plan(bigint, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_plan(bigint, jsonb) IS
    'internal: the next write request of an export run (credential redacted), or done';

-- The per-record results of a write response, or a classified error.  A
-- batch of several records refused as a whole (a fatal status: 400, 409,
-- 422, ...) is split in two halves for the next requests; a single record
-- refused so becomes a per-record failure with the provider's message.
CREATE FUNCTION synchub._export_parse(spec jsonb, checkpoint jsonb, status integer, headers jsonb, body jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    res   jsonb := spec #> '{write,result}';
    batch jsonb := coalesce(checkpoint->'batch', '[]');
    n     integer := jsonb_array_length(batch);
    ck    jsonb := checkpoint - 'batch';
    rate  jsonb := synchub._rate_info(spec, headers);
    err   jsonb;
    items jsonb;
    out   jsonb := '[]';
    ids   jsonb;
    half  integer;
    k     integer;
    x     jsonb;
    ok    boolean;
    msg   text;
BEGIN
    IF status BETWEEN 200 AND 299 THEN
        items := CASE WHEN res->>'style' = 'single' THEN jsonb_build_array(body)
                      WHEN res ? 'results' THEN body #> synchub._json_path(res->>'results')
                      ELSE body END;
        FOR k IN 0 .. n - 1 LOOP
            IF res->>'style' = 'errors_by_key' THEN
                SELECT e #>> synchub._json_path(coalesce(res->>'message', 'message')) INTO msg
                  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(body #> synchub._json_path(coalesce(res->>'errors', 'errors'))) = 'array'
                                                 THEN body #> synchub._json_path(coalesce(res->>'errors', 'errors')) ELSE '[]' END) e
                 WHERE lower(e #>> synchub._json_path(res->>'key')) = lower(batch->k->>'key')
                 LIMIT 1;
                SELECT r INTO x
                  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(items) = 'array' THEN items ELSE '[]' END) r
                 WHERE lower(r #>> synchub._json_path(res->>'result_key')) = lower(batch->k->>'key')
                 LIMIT 1;
                ok := msg IS NULL AND x IS NOT NULL;
                msg := coalesce(msg, CASE WHEN x IS NULL THEN 'the provider returned no result for this record' END);
            ELSE
                x := CASE WHEN jsonb_typeof(items) = 'array' THEN items->k END;
                ok := x IS NOT NULL AND coalesce((x #>> synchub._json_path(coalesce(res->>'success', 'success')))::boolean, true);
                msg := CASE WHEN x IS NULL THEN 'the provider returned no result for this record'
                            WHEN NOT ok THEN coalesce(x #>> synchub._json_path(coalesce(res->>'message', 'message')),
                                                      'refused by the provider') END;
            END IF;
            out := out || jsonb_build_array((batch->k) || jsonb_build_object(
                'ok', ok,
                'id', CASE WHEN ok AND res ? 'id' THEN x #>> synchub._json_path(res->>'id') END,
                'error', CASE WHEN NOT ok THEN left(msg, 1000) END));
        END LOOP;
        RETURN jsonb_build_object('results', out, 'count', n, 'checkpoint', ck, 'done', false, 'rate', rate,
                                  'records_total', ck->'total');
    END IF;

    err := synchub._classify_error(spec, status, body, rate);
    IF err->>'class' <> 'fatal' OR n = 0 THEN
        RETURN jsonb_build_object('error', err, 'rate', rate, 'checkpoint', checkpoint);
    END IF;
    IF n > 1 THEN
        half := (n + 1) / 2;
        SELECT jsonb_build_array(
                   jsonb_agg(b->'entry' ORDER BY p) FILTER (WHERE p <= half),
                   jsonb_agg(b->'entry' ORDER BY p) FILTER (WHERE p > half))
          INTO ids FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(b, p);
        RETURN jsonb_build_object('results', '[]'::jsonb, 'count', 0, 'done', false, 'rate', rate, 'split', true,
                                  'records_total', ck->'total',
                                  'checkpoint', jsonb_set(ck, '{split}', ids || coalesce(ck->'split', '[]')));
    END IF;
    RETURN jsonb_build_object(
        'results', jsonb_build_array((batch->0) || jsonb_build_object(
            'ok', false, 'id', NULL,
            'error', left(concat_ws(' ', 'HTTP ' || status, err->>'code') || ': ' || (err->>'message'), 1000))),
        'count', 1, 'checkpoint', ck, 'done', false, 'rate', rate, 'records_total', ck->'total');
END
$$;
REVOKE ALL ON FUNCTION synchub._export_parse(jsonb, jsonb, integer, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_parse(jsonb, jsonb, integer, jsonb, jsonb) IS
    'internal: per-record results of an export write response, a split of a refused batch, or a classified error';

-- Store the results of a write: the provider's id written back to rows
-- that had none (or another), refused records kept in synchub.rejects,
-- exported entries removed from the outbox unless the row changed again
-- meanwhile.  Returns the checkpoint with the run's counts (_export_counted).
CREATE FUNCTION synchub._export_apply(integration_id bigint, job_id bigint, checkpoint jsonb, results jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i       synchub.integrations := synchub._integration_row(integration_id);
    tgt     regclass := coalesce(i.options->>'target', 'synchub.contacts')::regclass;
    r       jsonb;
    err     text;
    created bigint := 0;
    updated bigint := 0;
    refused bigint := 0;
    capture text := coalesce(current_setting('synchub.capture_changes', true), 'on');
BEGIN
    -- Writing the provider's id back is not a change to export.
    PERFORM set_config('synchub.capture_changes', 'off', true);
    FOR r IN SELECT * FROM jsonb_array_elements(coalesce(results, '[]')) LOOP
        err := CASE WHEN (r->>'ok')::boolean THEN NULL ELSE coalesce(r->>'error', 'refused by the provider') END;
        IF err IS NULL AND r->>'id' IS NOT NULL AND r->>'id' IS DISTINCT FROM r->>'external_id' THEN
            BEGIN
                PERFORM synchub._exec_as_table_owner(tgt,
                    format('UPDATE %s t SET external_id = $2 WHERE %s AND t.integration_id = %s',
                           tgt, synchub._row_key_where(tgt, r->'row_key'), i.id),
                    r->'row_key', r->>'id');
            EXCEPTION WHEN unique_violation THEN
                err := format('the provider answered with id %s, which another row of %s already has', r->>'id', tgt);
            END;
        END IF;
        IF err IS NOT NULL THEN
            PERFORM synchub._export_reject(i, job_id, coalesce(r->>'external_id', r->>'key'), r->'record', err);
            refused := refused + 1;
        ELSIF r->>'external_id' IS NULL THEN
            created := created + 1;
        ELSE
            updated := updated + 1;
        END IF;
        DELETE FROM synchub.outbox o
         WHERE o.integration_id = i.id AND o.id = (r->>'entry')::bigint AND o.version = (r->>'v')::integer;
    END LOOP;
    PERFORM set_config('synchub.capture_changes', capture, true);
    RETURN synchub._export_counted(checkpoint, created, updated, refused);
END
$$;
REVOKE ALL ON FUNCTION synchub._export_apply(bigint, bigint, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._export_apply(bigint, bigint, jsonb, jsonb) IS
    'internal: store an export batch''s results (ids written back, rejects kept, outbox entries removed); returns the checkpoint';
