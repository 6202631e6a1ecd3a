-------------------------------------------------------------------------------
-- Bulk upsert
--
-- synchub.bulk_upsert() writes a JSON array of records into a table with one
-- set-based statement per batch (src/upsert*.c).  Records that cannot be
-- stored go to synchub.rejects, which the sync engine uses too.  Both run as
-- the caller: docs/upsert.md lists the privileges a role needs.
-------------------------------------------------------------------------------

CREATE TABLE synchub.rejects (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id         bigint,
    integration_id bigint,
    target         regclass,
    external_id    text,
    record_index   integer,
    record         jsonb,
    error          text        NOT NULL,
    sqlstate       text,
    at             timestamptz NOT NULL DEFAULT now(),
    owner          regrole     NOT NULL DEFAULT current_user::regrole
);
REVOKE ALL ON synchub.rejects FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('synchub.rejects', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.rejects_id_seq', '');
CREATE INDEX rejects_job_idx ON synchub.rejects (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX rejects_integration_idx ON synchub.rejects (integration_id, at)
    WHERE integration_id IS NOT NULL;

-- A role writes and reads the rejects it (or a role it belongs to) made.
ALTER TABLE synchub.rejects ENABLE ROW LEVEL SECURITY;
CREATE POLICY rejects_owner ON synchub.rejects
    USING (pg_has_role(owner, 'USAGE')) WITH CHECK (pg_has_role(owner, 'USAGE'));

COMMENT ON TABLE synchub.rejects IS 'records that bulk_upsert or a sync could not store, with the reason';

CREATE FUNCTION synchub.bulk_upsert(target regclass, records jsonb, key_columns text[],
                                    field_map jsonb DEFAULT NULL, options jsonb DEFAULT '{}')
    RETURNS TABLE(inserted bigint, updated bigint, unchanged bigint, rejected bigint)
    AS 'MODULE_PATHNAME', 'synchub_bulk_upsert'
    LANGUAGE C VOLATILE SECURITY INVOKER ROWS 1;
REVOKE ALL ON FUNCTION synchub.bulk_upsert(regclass, jsonb, text[], jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub.bulk_upsert(regclass, jsonb, text[], jsonb, jsonb) IS
    'insert or update a JSON array of records by key in one statement per batch; unchanged rows are not written, failing records go to synchub.rejects';
