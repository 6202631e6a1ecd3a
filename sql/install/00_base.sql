-- synchub install script, assembled from sql/install/*.sql at build time.
\echo Use "CREATE EXTENSION synchub" to load this file. \quit

-- The schema is created by CREATE EXTENSION (control file: schema = synchub).
-- Nothing in it is granted to PUBLIC; docs/privileges.md lists what each
-- kind of role needs.
REVOKE ALL ON SCHEMA synchub FROM PUBLIC;

COMMENT ON SCHEMA synchub IS 'synchub: CRM sync hub (job queue, worker, bulk upsert, pagination, metrics)';

-- Per-database secrets (cursor HMAC key, credentials key).  Readable by the
-- extension owner only; the C code reads them with the owner's rights.
-- pg_dump keeps them.  A restore runs CREATE EXTENSION (which makes new
-- keys) before it copies the dumped rows back, so a name may have several
-- rows: the oldest one is the key in use, and restored keys win.
CREATE TABLE synchub.secrets (
    name       text        NOT NULL,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX secrets_name_idx ON synchub.secrets (name, created_at);
REVOKE ALL ON synchub.secrets FROM PUBLIC;
COMMENT ON TABLE synchub.secrets IS 'per-database keys generated at CREATE EXTENSION; readable by the extension owner only';

CREATE FUNCTION synchub._random_bytes(n integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_random_bytes'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synchub._random_bytes(integer) FROM PUBLIC;
COMMENT ON FUNCTION synchub._random_bytes(integer) IS 'internal: n bytes (1..1024) from the server''s strong random source';

INSERT INTO synchub.secrets (name, value) VALUES
    ('cursor_key', synchub._random_bytes(32)),
    ('credentials_key', synchub._random_bytes(32));
SELECT pg_catalog.pg_extension_config_dump('synchub.secrets', '');

CREATE FUNCTION synchub.version() RETURNS text
    AS 'MODULE_PATHNAME', 'synchub_version'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synchub.version() FROM PUBLIC;
COMMENT ON FUNCTION synchub.version() IS 'version of the loaded synchub library';
