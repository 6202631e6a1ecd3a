-- synchub install script, assembled from sql/install/*.sql at build time.
\echo Use "CREATE EXTENSION synchub" to load this file. \quit

-- The schema is created by CREATE EXTENSION (control file: schema = synchub).
-- Nothing in it is granted to PUBLIC; docs/privileges.md lists what each
-- kind of role needs.
REVOKE ALL ON SCHEMA synchub FROM PUBLIC;

COMMENT ON SCHEMA synchub IS 'synchub: CRM sync hub (job queue, worker, bulk upsert, pagination, metrics)';

-- Per-database secrets (cursor HMAC key, credentials key).  Readable by the
-- extension owner only; the C code reads them with the owner's rights.
CREATE TABLE synchub.secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
REVOKE ALL ON synchub.secrets FROM PUBLIC;
COMMENT ON TABLE synchub.secrets IS 'per-database keys generated at CREATE EXTENSION; readable by the extension owner only';

CREATE FUNCTION synchub.random_bytes(n integer) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_random_bytes'
    LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synchub.random_bytes(integer) FROM PUBLIC;
COMMENT ON FUNCTION synchub.random_bytes(integer) IS 'n bytes (1..1024) from the server''s strong random source';

INSERT INTO synchub.secrets (name, value) VALUES
    ('cursor_key', synchub.random_bytes(32)),
    ('credentials_key', synchub.random_bytes(32));

CREATE FUNCTION synchub.version() RETURNS text
    AS 'MODULE_PATHNAME', 'synchub_version'
    LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION synchub.version() FROM PUBLIC;
COMMENT ON FUNCTION synchub.version() IS 'version of the loaded synchub library';
