-------------------------------------------------------------------------------
-- Integrations: one account at one provider
--
-- synchub.integrations is readable by the roles granted SELECT; row-level
-- security limits a role to the integrations it (or a role it belongs to)
-- created.  Credentials are in synchub.integration_credentials, which only
-- the extension owner can read: the C function synchub._credentials_store
-- encrypts and writes them with the owner's rights after checking that the
-- caller may manage the integration (docs/connectors.md, "Credentials").
-------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('synchub.providers',
    $$WHERE name NOT IN ('hubspot', 'salesforce', 'pipedrive')$$);

CREATE TABLE synchub.integrations (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text        NOT NULL UNIQUE CHECK (name <> '' AND length(name) <= 128),
    provider      text        NOT NULL REFERENCES synchub.providers (name) ON UPDATE CASCADE,
    base_url      text        NOT NULL,
    options       jsonb       NOT NULL DEFAULT '{}',
    status        text        NOT NULL DEFAULT 'active',
    status_reason text,
    paused_until  timestamptz,
    owner         regrole     NOT NULL DEFAULT current_user::regrole,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_status_check CHECK (status IN ('active', 'paused', 'disabled')),
    CONSTRAINT integrations_base_url_check
        CHECK (base_url ~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' AND base_url !~ '/$')
);
REVOKE ALL ON synchub.integrations FROM PUBLIC;
ALTER TABLE synchub.integrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY integrations_owner ON synchub.integrations
    USING (pg_has_role(owner, 'USAGE')) WITH CHECK (pg_has_role(owner, 'USAGE'));
COMMENT ON TABLE synchub.integrations IS 'one account at one provider: base URL, options, status; credentials are kept apart';
SELECT pg_catalog.pg_extension_config_dump('synchub.integrations', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.integrations_id_seq', '');

-- Owner only: no grant is ever given on this table.
CREATE TABLE synchub.integration_credentials (
    integration_id bigint      PRIMARY KEY REFERENCES synchub.integrations (id) ON DELETE CASCADE,
    key_id         text        NOT NULL,
    ciphertext     bytea       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON synchub.integration_credentials FROM PUBLIC;
COMMENT ON TABLE synchub.integration_credentials IS
    'AES-256-GCM encrypted credentials (version, nonce, ciphertext, tag; the integration id is the associated data); extension owner only';
SELECT pg_catalog.pg_extension_config_dump('synchub.integration_credentials', '');

-- Where the next incremental sync of an integration starts.
CREATE TABLE synchub.sync_state (
    integration_id   bigint      PRIMARY KEY REFERENCES synchub.integrations (id) ON DELETE CASCADE,
    bookmark         jsonb,
    last_sync_at     timestamptz,
    last_sync_status text,
    last_error       text
);
REVOKE ALL ON synchub.sync_state FROM PUBLIC;
COMMENT ON TABLE synchub.sync_state IS 'per integration: the incremental bookmark {"since", "since_id"} and the last run''s outcome';
SELECT pg_catalog.pg_extension_config_dump('synchub.sync_state', '');

CREATE TABLE synchub.schedules (
    integration_id bigint      NOT NULL REFERENCES synchub.integrations (id) ON DELETE CASCADE,
    mode           text        NOT NULL,
    every          interval    NOT NULL,
    next_run_at    timestamptz NOT NULL,
    last_job_id    bigint,
    PRIMARY KEY (integration_id, mode),
    CONSTRAINT schedules_mode_check CHECK (mode IN ('full', 'incremental', 'export')),
    CONSTRAINT schedules_every_check CHECK (every >= interval '1 second')
);
REVOKE ALL ON synchub.schedules FROM PUBLIC;
CREATE INDEX schedules_due_idx ON synchub.schedules (next_run_at);
COMMENT ON TABLE synchub.schedules IS 'recurring syncs; the worker enqueues the due ones through synchub._due_schedules()';
SELECT pg_catalog.pg_extension_config_dump('synchub.schedules', '');

CREATE TABLE synchub.contacts (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id    bigint      NOT NULL REFERENCES synchub.integrations (id) ON DELETE CASCADE,
    external_id       text,       -- NULL: created here, not exported yet
    email             text,
    first_name        text,
    last_name         text,
    company           text,
    phone             text,
    properties        jsonb,
    remote_updated_at timestamptz,
    synced_at         timestamptz NOT NULL DEFAULT now(),
    archived          boolean     NOT NULL DEFAULT false,
    CONSTRAINT contacts_external_key UNIQUE (integration_id, external_id)
);
REVOKE ALL ON synchub.contacts FROM PUBLIC;
CREATE INDEX contacts_updated_idx ON synchub.contacts (integration_id, remote_updated_at);
COMMENT ON TABLE synchub.contacts IS 'default target table of a sync: one row per provider contact';
SELECT pg_catalog.pg_extension_config_dump('synchub.contacts', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.contacts_id_seq', '');

-- A role sees the schedules, sync state and contacts of the integrations it
-- sees (row-level security on synchub.integrations applies inside the
-- policy).  The extension owner, and so the worker, sees everything.
ALTER TABLE synchub.sync_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE synchub.schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE synchub.contacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_state_integration ON synchub.sync_state
    USING (EXISTS (SELECT FROM synchub.integrations i WHERE i.id = integration_id));
CREATE POLICY schedules_integration ON synchub.schedules
    USING (EXISTS (SELECT FROM synchub.integrations i WHERE i.id = integration_id));
CREATE POLICY contacts_integration ON synchub.contacts
    USING (EXISTS (SELECT FROM synchub.integrations i WHERE i.id = integration_id));

-------------------------------------------------------------------------------
-- Credentials (C, src/credentials.c)
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._credentials_store(integration_id bigint, credentials jsonb) RETURNS void
    AS 'MODULE_PATHNAME', 'synchub_credentials_store'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._credentials_store(bigint, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._credentials_store(bigint, jsonb) IS
    'internal: encrypt and store an integration''s credentials (the caller must be a member of the integration''s owner role)';

CREATE FUNCTION synchub._credentials_get(integration_id bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_credentials_get'
    LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION synchub._credentials_get(bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._credentials_get(bigint) IS
    'internal, extension owner only: the decrypted credentials of an integration';

-------------------------------------------------------------------------------
-- Options
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._options_fail(key text, expected text, errcode text DEFAULT '22023') RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE EXCEPTION 'invalid integration option "%"', key
        USING ERRCODE = errcode, DETAIL = expected;
END
$$;
REVOKE ALL ON FUNCTION synchub._options_fail(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._options_fail(text, text, text) IS 'internal: error naming a bad integration option';

-- The field map in effect: the provider's default for the columns the target
-- has, overridden by the options' field_map (a null value unmaps a column).
CREATE FUNCTION synchub._effective_field_map(spec jsonb, options jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(m.key, m.value), '{}')
      FROM jsonb_each(coalesce(spec->'field_map', '{}') || coalesce(options->'field_map', '{}')) m
     WHERE jsonb_typeof(m.value) = 'string'
       AND (options->'field_map' ? m.key OR EXISTS (
            SELECT FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = coalesce(options->>'target', 'synchub.contacts')::regclass
               AND a.attname = m.key AND a.attnum > 0 AND NOT a.attisdropped))
$$;
REVOKE ALL ON FUNCTION synchub._effective_field_map(jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._effective_field_map(jsonb, jsonb) IS 'internal: the provider''s field map for the target''s columns, with the integration''s overrides';

-- Validate integration options against the provider; returns them normalized
-- (target as a schema-qualified name).
CREATE FUNCTION synchub._options_check(provider text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    spec    jsonb;
    o       jsonb := coalesce(options, '{}');
    k       text;
    v       jsonb;
    target  regclass;
    maxpage numeric;
BEGIN
    SELECT p.spec INTO spec FROM synchub.providers p WHERE p.name = provider;
    IF jsonb_typeof(o) <> 'object' THEN
        RAISE EXCEPTION 'integration options must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT jsonb_object_keys(o) LOOP
        IF k NOT IN ('target', 'field_map', 'page_size', 'rate_limit', 'timeout_ms', 'properties',
                     'lookback_seconds', 'external_id_field', 'export', 'write_key') THEN
            PERFORM synchub._options_fail(k, 'Known options are target, field_map, page_size, rate_limit, timeout_ms, properties, lookback_seconds, external_id_field, export, write_key.');
        END IF;
    END LOOP;

    IF o ? 'target' THEN
        IF jsonb_typeof(o->'target') <> 'string' THEN
            PERFORM synchub._options_fail('target', 'It must be the name of a table.');
        END IF;
        target := to_regclass(o->>'target');
        IF target IS NULL THEN
            RAISE EXCEPTION 'relation "%" does not exist', o->>'target'
                USING ERRCODE = 'undefined_table';
        END IF;
        IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = target) NOT IN ('r', 'p') THEN
            PERFORM synchub._options_fail('target', format('"%s" is not a table.', target));
        END IF;
        -- The worker writes the target as the table's owner: only a role
        -- that may itself read and write it names it.
        IF NOT (has_table_privilege(target, 'SELECT') AND has_table_privilege(target, 'INSERT')
                AND has_table_privilege(target, 'UPDATE')) THEN
            RAISE EXCEPTION 'permission denied for table %', target
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'The target of an integration must be a table its creator may read, insert into and update.';
        END IF;
        -- always schema-qualified: the name is resolved again by sessions
        -- (the worker's, every writer's) whose search_path differs
        o := jsonb_set(o, '{target}', to_jsonb((SELECT format('%I.%I', n.nspname, c.relname)
                                                  FROM pg_catalog.pg_class c
                                                  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                                 WHERE c.oid = target)));
    ELSE
        target := 'synchub.contacts'::regclass;
    END IF;
    -- The key every sync writes by.
    IF NOT EXISTS (
        SELECT FROM pg_catalog.pg_index i
         WHERE i.indrelid = target AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
           AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                  FROM unnest(i.indkey::int2[]) n JOIN pg_catalog.pg_attribute a ON a.attrelid = target AND a.attnum = n)
               = ARRAY['external_id', 'integration_id']) THEN
        PERFORM synchub._options_fail('target',
            format('Table %s needs columns integration_id and external_id with a unique key on exactly (integration_id, external_id).', target));
    END IF;

    IF o ? 'field_map' THEN
        IF jsonb_typeof(o->'field_map') <> 'object' THEN
            PERFORM synchub._options_fail('field_map', 'It must be an object of target column to field path.');
        END IF;
        FOR k, v IN SELECT * FROM jsonb_each(o->'field_map') LOOP
            IF k IN ('integration_id', 'external_id') THEN
                PERFORM synchub._options_fail('field_map', format('Column "%s" is set by the sync itself.', k));
            END IF;
            IF jsonb_typeof(v) <> 'null' AND (jsonb_typeof(v) <> 'string' OR NOT synchub._json_path_valid(v #>> '{}')) THEN
                PERFORM synchub._options_fail('field_map',
                    format('The path for column "%s" must be a field path such as "a.b", "a[0].b" or "$", or null.', k));
            END IF;
            IF jsonb_typeof(v) = 'string' AND NOT EXISTS (
                    SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = target AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'column "%" of relation "%" does not exist', k, target
                    USING ERRCODE = 'undefined_column', DETAIL = 'Every key of the field_map option must be a column of the target table.';
            END IF;
        END LOOP;
    END IF;

    IF o ? 'page_size' THEN
        SELECT max((r.value #>> '{page_size,max}')::numeric) INTO maxpage FROM jsonb_each(spec->'requests') r;
        IF jsonb_typeof(o->'page_size') <> 'number' OR (o->>'page_size')::numeric <> trunc((o->>'page_size')::numeric)
           OR (o->>'page_size')::numeric NOT BETWEEN 1 AND maxpage THEN
            PERFORM synchub._options_fail('page_size', format('It must be an integer between 1 and %s for provider "%s".', maxpage, provider));
        END IF;
    END IF;
    IF o ? 'rate_limit' AND NOT synchub._rate_windows_valid(o->'rate_limit') THEN
        PERFORM synchub._options_fail('rate_limit',
            'It must be {"requests": N, "per_seconds": S} or an array of 1 to 4 of them, with N a positive integer and S in (0, 86400].');
    END IF;
    IF o ? 'timeout_ms' AND (jsonb_typeof(o->'timeout_ms') <> 'number'
            OR (o->>'timeout_ms')::numeric <> trunc((o->>'timeout_ms')::numeric)
            OR (o->>'timeout_ms')::numeric NOT BETWEEN 1 AND 3600000) THEN
        PERFORM synchub._options_fail('timeout_ms', 'It must be an integer between 1 and 3600000.');
    END IF;
    IF o ? 'lookback_seconds' AND (jsonb_typeof(o->'lookback_seconds') <> 'number'
            OR (o->>'lookback_seconds')::numeric <> trunc((o->>'lookback_seconds')::numeric)
            OR (o->>'lookback_seconds')::numeric NOT BETWEEN 0 AND 86400) THEN
        PERFORM synchub._options_fail('lookback_seconds', 'It must be an integer between 0 and 86400.');
    END IF;
    IF o ? 'properties' AND (jsonb_typeof(o->'properties') <> 'array' OR jsonb_array_length(o->'properties') = 0
            OR EXISTS (SELECT FROM jsonb_array_elements(o->'properties') p
                        WHERE jsonb_typeof(p) <> 'string' OR p #>> '{}' !~ '^[A-Za-z0-9_.]+$')) THEN
        PERFORM synchub._options_fail('properties', 'It must be a non-empty array of provider field names (letters, digits, "_" and ".").');
    END IF;
    IF o ? 'external_id_field' AND (jsonb_typeof(o->'external_id_field') <> 'string'
            OR o->>'external_id_field' !~ '^[A-Za-z0-9_]+$') THEN
        PERFORM synchub._options_fail('external_id_field', 'It must be a provider field name (letters, digits and "_").');
    END IF;
    IF o ? 'export' AND jsonb_typeof(o->'export') <> 'boolean' THEN
        PERFORM synchub._options_fail('export', 'It must be true or false.');
    END IF;
    IF (o->>'export')::boolean AND NOT spec ? 'write' THEN
        PERFORM synchub._options_fail('export', format('Provider "%s" has no write endpoint.', provider), '0A000');
    END IF;
    IF o ? 'write_key' AND (jsonb_typeof(o->'write_key') <> 'string' OR o->>'write_key' !~ '\{[a-z_][a-z0-9_]*\}') THEN
        PERFORM synchub._options_fail('write_key', 'It must be a template naming target columns, such as "{email}".');
    END IF;
    -- An export fills the provider's record and key from the row; a
    -- "{column}" the target lacks is sent as null, so say which.
    IF (o->>'export')::boolean THEN
        SELECT string_agg(DISTINCT format('"%s"', m[1]), ', ') INTO k
          FROM regexp_matches(concat_ws(' ', (spec #> '{write,record}')::text, spec #>> '{write,key}', o->>'write_key'),
                              '\{([a-z_][a-z0-9_]*)\}', 'g') m
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = target AND a.attname = m[1] AND a.attnum > 0 AND NOT a.attisdropped);
        IF k IS NOT NULL THEN
            RAISE WARNING 'the export of provider "%" names columns that table % does not have: %', provider, target, k
                USING DETAIL = 'Those fields are sent to the provider as null.',
                      HINT = 'Add the columns to the table, or use a provider whose write record names only columns it has.';
        END IF;
    END IF;
    RETURN o;
END
$$;
REVOKE ALL ON FUNCTION synchub._options_check(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._options_check(text, jsonb) IS 'internal: validate and normalize integration options for a provider';

CREATE FUNCTION synchub._integration_id(integration text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r bigint;
BEGIN
    SELECT i.id INTO r FROM synchub.integrations i WHERE i.name = integration;
    IF r IS NULL THEN
        RAISE EXCEPTION 'integration "%" does not exist', integration
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION synchub._integration_id(text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._integration_id(text) IS 'internal: an integration''s id from its name, or an error';

-- Options are checked (and normalized) on every insert and update, whoever
-- writes them.
CREATE FUNCTION synchub._integrations_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.options := synchub._options_check(NEW.provider, NEW.options);
    IF (NEW.options->>'export')::boolean THEN
        PERFORM synchub._export_install(coalesce(NEW.options->>'target', 'synchub.contacts')::regclass);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION synchub._integrations_check() FROM PUBLIC;
COMMENT ON FUNCTION synchub._integrations_check() IS 'internal: trigger validating synchub.integrations.options';

CREATE TRIGGER integrations_check BEFORE INSERT OR UPDATE OF provider, options ON synchub.integrations
    FOR EACH ROW EXECUTE FUNCTION synchub._integrations_check();

-------------------------------------------------------------------------------
-- User API
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.create_integration(name text, provider text, base_url text, credentials jsonb,
                                           options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_variable
DECLARE
    new_id bigint;
BEGIN
    IF name IS NULL OR name = '' OR length(name) > 128 THEN
        RAISE EXCEPTION 'integration name must be between 1 and 128 characters long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM synchub.providers p WHERE p.name = provider) THEN
        RAISE EXCEPTION 'provider "%" does not exist', provider
            USING ERRCODE = 'undefined_object',
                  HINT = 'Providers are the rows of synchub.providers.';
    END IF;
    IF base_url IS NULL OR base_url !~ '^https?://[^/?#@[:space:]]+(/[^?#[:space:]]*)?$' THEN
        RAISE EXCEPTION 'invalid base URL for integration "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'It must be an http or https URL without user name, password, query string or fragment.';
    END IF;
    IF EXISTS (SELECT FROM synchub.integrations i WHERE i.name = name) THEN
        RAISE EXCEPTION 'integration "%" already exists', name
            USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO synchub.integrations (name, provider, base_url, options)
    VALUES (name, provider, rtrim(base_url, '/'), coalesce(options, '{}'))
    RETURNING id INTO new_id;
    PERFORM synchub._credentials_store(new_id, credentials);
    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION synchub.create_integration(text, text, text, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub.create_integration(text, text, text, jsonb, jsonb) IS
    'add an integration: a named account at a provider, with encrypted credentials and options; returns its id';

CREATE FUNCTION synchub.set_credentials(integration text, credentials jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM synchub._credentials_store(synchub._integration_id(integration), credentials);
END
$$;
REVOKE ALL ON FUNCTION synchub.set_credentials(text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub.set_credentials(text, jsonb) IS 'replace an integration''s credentials (stored encrypted)';

CREATE FUNCTION synchub._enqueue_sync(integration_id bigint, mode text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    i synchub.integrations;
BEGIN
    SELECT * INTO i FROM synchub.integrations WHERE id = integration_id;
    RETURN synchub.enqueue(
        kind => CASE mode WHEN 'full' THEN 'full_import' WHEN 'incremental' THEN 'incremental_sync' ELSE 'export' END,
        payload => jsonb_build_object('integration', i.name, 'mode', mode),
        integration_id => i.id,
        queue => 'synchub',
        run_at => greatest(now(), i.paused_until),
        dedup_key => format('integration:%s:%s', i.id, mode));
END
$$;
REVOKE ALL ON FUNCTION synchub._enqueue_sync(bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._enqueue_sync(bigint, text) IS 'internal: enqueue a sync of an integration, once per integration and mode while unfinished';

CREATE FUNCTION synchub._check_mode(mode text, integration_id bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF mode IS NULL OR mode NOT IN ('full', 'incremental', 'export') THEN
        RAISE EXCEPTION 'invalid sync mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The mode must be full, incremental or export.';
    END IF;
    IF NOT EXISTS (SELECT FROM synchub.integrations i JOIN synchub.providers p ON p.name = i.provider
                    WHERE i.id = integration_id
                      AND (mode = 'full' OR (mode = 'export' AND p.spec ? 'write')
                           OR p.spec #> '{modes}' ? mode)) THEN
        RAISE EXCEPTION 'the provider of this integration does not support mode "%"', mode
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF mode = 'export' AND NOT EXISTS (SELECT FROM synchub.integrations i
                                        WHERE i.id = integration_id AND i.options @> '{"export": true}') THEN
        RAISE EXCEPTION 'export is not enabled for this integration'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set the option "export" to true: from then on changes to its rows are captured for export.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._check_mode(text, bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._check_mode(text, bigint) IS 'internal: refuse a sync mode the integration''s provider does not have';

CREATE FUNCTION synchub.sync(integration text, mode text DEFAULT 'incremental') RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    iid bigint := synchub._integration_id(integration);
BEGIN
    PERFORM synchub._check_mode(mode, iid);
    RETURN synchub._enqueue_sync(iid, mode);
END
$$;
REVOKE ALL ON FUNCTION synchub.sync(text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub.sync(text, text) IS
    'enqueue a full import, incremental sync or export of an integration on queue synchub; returns the job id (the unfinished one if there is one)';

CREATE FUNCTION synchub.schedule(integration text, every interval, mode text DEFAULT 'incremental') RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    iid bigint := synchub._integration_id(integration);
BEGIN
    PERFORM synchub._check_mode(mode, iid);
    IF every IS NULL OR every < interval '1 second' THEN
        RAISE EXCEPTION 'schedule interval must be at least 1 second'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value was %s.', coalesce(every::text, 'NULL'));
    END IF;
    INSERT INTO synchub.schedules AS s (integration_id, mode, every, next_run_at)
    VALUES (iid, mode, every, now())
    ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
       SET every = EXCLUDED.every,
           next_run_at = least(s.next_run_at, EXCLUDED.next_run_at + EXCLUDED.every);
END
$$;
REVOKE ALL ON FUNCTION synchub.schedule(text, interval, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub.schedule(text, interval, text) IS
    'run a sync of an integration every interval (the first one now); calling it again changes the interval';

CREATE FUNCTION synchub.unschedule(integration text, mode text DEFAULT 'incremental') RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM synchub.schedules s
     WHERE s.integration_id = synchub._integration_id(integration) AND s.mode = unschedule.mode;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION synchub.unschedule(text, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub.unschedule(text, text) IS 'stop a recurring sync; returns whether there was one';

-- Called by the worker: enqueue every due schedule of an active integration
-- and move its next run forward by whole intervals past now (missed runs
-- are not caught up).  Returns the job ids.
CREATE FUNCTION synchub._due_schedules(at timestamptz DEFAULT now()) RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s   record;
    job bigint;
BEGIN
    -- Pauses that have run out end here (the worker calls this every poll).
    UPDATE synchub.integrations i
       SET status = 'active', status_reason = NULL, paused_until = NULL, updated_at = now()
     WHERE i.status = 'paused' AND i.paused_until <= at;
    FOR s IN
        SELECT sc.integration_id, sc.mode, sc.every, sc.next_run_at
          FROM synchub.schedules sc JOIN synchub.integrations i ON i.id = sc.integration_id
         WHERE sc.next_run_at <= at
           AND i.status = 'active'
         ORDER BY sc.next_run_at
           FOR UPDATE OF sc SKIP LOCKED
    LOOP
        job := synchub._enqueue_sync(s.integration_id, s.mode);
        -- The job belongs to the integration's owner, who can then see it.
        UPDATE synchub.job_queue q SET owner = i.owner
          FROM synchub.integrations i
         WHERE q.id = job AND i.id = s.integration_id AND q.owner <> i.owner;
        UPDATE synchub.schedules sc
           SET last_job_id = job,
               next_run_at = CASE WHEN s.next_run_at + s.every > at THEN s.next_run_at + s.every
                                  ELSE at + s.every END
         WHERE sc.integration_id = s.integration_id AND sc.mode = s.mode;
        RETURN NEXT job;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION synchub._due_schedules(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION synchub._due_schedules(timestamptz) IS
    'internal, for the worker: enqueue the syncs whose schedule is due and advance them; returns the job ids';

-------------------------------------------------------------------------------
-- Worker helpers: outcome of a run, pause and resume
-------------------------------------------------------------------------------

-- Record the outcome of a run: its status ('succeeded', 'failed', …), the
-- error if any, and the bookmark the parser returned (kept when NULL).
CREATE FUNCTION synchub._sync_finish(integration_id bigint, status text, bookmark jsonb DEFAULT NULL,
                                     error text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO synchub.sync_state AS s (integration_id, bookmark, last_sync_at, last_sync_status, last_error)
    VALUES (_sync_finish.integration_id, _sync_finish.bookmark, now(), _sync_finish.status, left(_sync_finish.error, 2000))
    ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE
       SET bookmark = coalesce(EXCLUDED.bookmark, s.bookmark),
           last_sync_at = EXCLUDED.last_sync_at,
           last_sync_status = EXCLUDED.last_sync_status,
           last_error = EXCLUDED.last_error;
END
$$;
REVOKE ALL ON FUNCTION synchub._sync_finish(bigint, text, jsonb, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._sync_finish(bigint, text, jsonb, text) IS
    'internal, for the worker: store a run''s outcome and the next incremental bookmark';

-- Pause an integration (a provider quota is used up): until a time, or
-- until resumed when until is NULL.  Its syncs are enqueued to run after
-- the pause and schedules skip it meanwhile.
CREATE FUNCTION synchub._integration_pause(integration_id bigint, until timestamptz, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE synchub.integrations i
       SET status = 'paused', paused_until = until, status_reason = left(reason, 2000), updated_at = now()
     WHERE i.id = integration_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'integration % does not exist', integration_id
            USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE synchub.job_queue j SET run_at = greatest(j.run_at, until)
     WHERE j.integration_id = _integration_pause.integration_id AND j.state = 'pending' AND until IS NOT NULL;
END
$$;
REVOKE ALL ON FUNCTION synchub._integration_pause(bigint, timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION synchub._integration_pause(bigint, timestamptz, text) IS
    'internal, for the worker: pause an integration until a time (NULL: until resumed) and hold its pending jobs';

CREATE FUNCTION synchub._integration_resume(integration_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE synchub.integrations i
       SET status = 'active', paused_until = NULL, status_reason = NULL, updated_at = now()
     WHERE i.id = integration_id AND i.status = 'paused';
    IF FOUND THEN
        UPDATE synchub.job_queue j SET run_at = now()
         WHERE j.integration_id = _integration_resume.integration_id AND j.queue = 'synchub'
           AND j.state = 'pending' AND j.run_at > now();
    END IF;
END
$$;
REVOKE ALL ON FUNCTION synchub._integration_resume(bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._integration_resume(bigint) IS 'internal, for the worker: end the pause of an integration and release its held sync jobs';
