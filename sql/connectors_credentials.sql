-- Credentials: AES-256-GCM at rest, bound to their integration, readable by
-- the extension owner only; the grants of docs/connectors.md let a role
-- manage its own integrations without ever reading a secret.
\i test/regress_setup.sql
SET synchub.notify = off;

SELECT synchub.create_integration('cr_a', 'hubspot', 'https://a.example', '{"token": "secret-A", "refresh_token": "rt-A"}') > 0 AS created;
SELECT synchub.create_integration('cr_b', 'hubspot', 'https://b.example', '{"token": "secret-A", "refresh_token": "rt-A"}') > 0 AS created;
CREATE TEMP VIEW creds AS
SELECT i.name, i.id, c.key_id, c.ciphertext
  FROM synchub.integrations i JOIN synchub.integration_credentials c ON c.integration_id = i.id
 WHERE i.name LIKE 'cr\_%';

-- Round trip, as the extension owner.
SELECT name, synchub._credentials_get(id) AS credentials FROM creds ORDER BY name;
-- Stored: version 1 | 12-byte nonce | ciphertext | 16-byte tag; no plaintext.
SELECT name, key_id, get_byte(ciphertext, 0) AS version,
       length(ciphertext) - 29 = octet_length('{"token": "secret-A", "refresh_token": "rt-A"}') AS sizes_match,
       position('secret-A'::bytea IN ciphertext) = 0 AS no_plaintext
  FROM creds ORDER BY name;
-- The same plaintext twice gives two ciphertexts (random nonce).
SELECT count(DISTINCT ciphertext) AS distinct_ciphertexts,
       count(DISTINCT substring(ciphertext FROM 2 FOR 12)) AS distinct_nonces FROM creds;
CREATE TEMP TABLE before AS SELECT ciphertext FROM creds WHERE name = 'cr_a';
SELECT synchub.set_credentials('cr_a', '{"token": "secret-A2"}');
SELECT c.ciphertext <> b.ciphertext AS changed, synchub._credentials_get(c.id) AS credentials
  FROM creds c, before b WHERE c.name = 'cr_a';
SELECT synchub.set_credentials('cr_a', '{"token": "secret-A2"}');
SELECT count(DISTINCT c.ciphertext) AS distinct_after_same_value FROM (
    SELECT ciphertext FROM creds WHERE name = 'cr_a' UNION ALL SELECT ciphertext FROM before) c;

-- A ciphertext moved to another integration, altered or cut does not decrypt.
UPDATE synchub.integration_credentials SET ciphertext = (SELECT ciphertext FROM creds WHERE name = 'cr_a')
 WHERE integration_id = (SELECT id FROM creds WHERE name = 'cr_b');
SELECT regexp_replace(pg_temp.err(format('SELECT synchub._credentials_get(%s)', id)), 'integration -?[0-9]+', 'integration N')
  FROM creds WHERE name = 'cr_b';
UPDATE synchub.integration_credentials
   SET ciphertext = set_byte(ciphertext, 20, get_byte(ciphertext, 20) # 1)
 WHERE integration_id = (SELECT id FROM creds WHERE name = 'cr_a');
SELECT regexp_replace(pg_temp.err(format('SELECT synchub._credentials_get(%s)', id)), 'integration -?[0-9]+', 'integration N')
  FROM creds WHERE name = 'cr_a';
UPDATE synchub.integration_credentials SET ciphertext = '\x01aabb'
 WHERE integration_id = (SELECT id FROM creds WHERE name = 'cr_a');
SELECT regexp_replace(pg_temp.err(format('SELECT synchub._credentials_get(%s)', id)), 'integration -?[0-9]+', 'integration N')
  FROM creds WHERE name = 'cr_a';
-- set_credentials repairs it.
SELECT synchub.set_credentials('cr_a', '{"token": "secret-A3"}');
SELECT synchub.set_credentials('cr_b', '{"token": "secret-B"}');
SELECT name, synchub._credentials_get(id) AS credentials FROM creds ORDER BY name;

-- Bad values are refused without being echoed.
SELECT pg_temp.err($$SELECT synchub.set_credentials('cr_a', '"secret-in-a-string"')$$);
SELECT pg_temp.err($$SELECT synchub.set_credentials('cr_a', NULL)$$);
SELECT pg_temp.err(format('SELECT synchub.set_credentials(%L, %L)', 'cr_a',
                          jsonb_build_object('token', repeat('x', 70000))));
SELECT pg_temp.err($$SELECT synchub._credentials_store(NULL, '{}')$$);
SELECT pg_temp.err($$SELECT synchub._credentials_store(-1, '{}')$$);
SELECT pg_temp.err($$SELECT synchub._credentials_get(-1)$$);

-- Roles: an application role with the grants of docs/connectors.md.
CREATE ROLE regress_cr_app;
CREATE ROLE regress_cr_other;
\i test/regress_app_grants.sql
SELECT count(pg_temp.grant_app(r)) AS roles_granted FROM unnest(ARRAY['regress_cr_app', 'regress_cr_other']) r;
SET ROLE regress_cr_app;
SELECT synchub.create_integration('cr_app', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "app-secret"}') > 0 AS created;
SELECT synchub.set_credentials('cr_app', '{"api_token": "app-secret-2"}');
SELECT synchub.sync('cr_app', 'full') > 0 AS enqueued;
SELECT synchub.schedule('cr_app', '1 hour');
-- It reads neither the credentials nor any secret.
SELECT pg_temp.err($$SELECT * FROM synchub.integration_credentials$$);
SELECT pg_temp.err($$SELECT * FROM synchub.secrets$$);
SELECT pg_temp.err($$UPDATE synchub.integration_credentials SET key_id = 'x'$$);
SELECT pg_temp.err($$SELECT synchub._credentials_get(1)$$);
SELECT pg_temp.err($$SELECT synchub._provider_request(1, 'full')$$);
SELECT pg_temp.err($$SELECT synchub._provider_refresh_request(1)$$);
SELECT name FROM synchub.integrations WHERE name LIKE 'cr\_%' ORDER BY name;
RESET ROLE;
-- A target is a table the role may read, insert into and update: the
-- worker writes it as the table's owner.
CREATE TABLE public.cr_private (integration_id bigint NOT NULL, external_id text NOT NULL,
                                UNIQUE (integration_id, external_id));
GRANT SELECT ON public.cr_private TO regress_cr_app;
CREATE TABLE public.cr_app_people (LIKE public.cr_private INCLUDING INDEXES);
ALTER TABLE public.cr_app_people OWNER TO regress_cr_app;
SET ROLE regress_cr_app;
SELECT pg_temp.err($$SELECT synchub.create_integration('cr_bad', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "x"}', '{"target": "public.cr_private"}')$$);
SELECT synchub.create_integration('cr_own', 'pipedrive', 'https://api.pipedrive.com', '{"api_token": "x"}', '{"target": "public.cr_app_people"}') > 0 AS created;
RESET ROLE;
-- Even with EXECUTE granted, the functions that return secrets refuse
-- every role but the extension owner.
GRANT EXECUTE ON FUNCTION synchub._credentials_get(bigint), synchub._provider_request(bigint, text, jsonb)
    TO regress_cr_app;
SET ROLE regress_cr_app;
SELECT pg_temp.err(format('SELECT synchub._credentials_get(%s)', id)) FROM synchub.integrations WHERE name = 'cr_app';
SELECT pg_temp.err(format($q$SELECT synchub._provider_request(%s, 'full')$q$, id)) FROM synchub.integrations WHERE name = 'cr_app';
RESET ROLE;
REVOKE EXECUTE ON FUNCTION synchub._credentials_get(bigint), synchub._provider_request(bigint, text, jsonb)
    FROM regress_cr_app;
SELECT synchub._credentials_get(id) AS stored_by_app FROM synchub.integrations WHERE name = 'cr_app';

-- The worker enqueues due schedules; the job belongs to the integration's
-- owner, who sees it.  The owner sees its contacts.
INSERT INTO synchub.contacts (integration_id, external_id, email)
SELECT id, 'p1', 'p1@example.com' FROM synchub.integrations WHERE name = 'cr_app';
CREATE TEMP TABLE due AS SELECT synchub._due_schedules() AS id;
CREATE TEMP TABLE app_id AS SELECT id FROM synchub.integrations WHERE name = 'cr_app';
GRANT SELECT ON app_id, due TO regress_cr_app, regress_cr_other;
SET ROLE regress_cr_app;
SELECT j.kind FROM synchub.jobs j JOIN app_id a ON a.id = j.integration_id ORDER BY j.kind;
SELECT count(*) AS scheduled_job_visible FROM due JOIN synchub.jobs j USING (id) JOIN app_id a ON a.id = j.integration_id;
SELECT (SELECT count(*) FROM synchub.schedules) AS schedules, (SELECT count(*) FROM synchub.contacts) AS contacts;
RESET ROLE;

-- Another role sees neither the integration, its schedules, contacts and
-- credentials, and cannot overwrite them.
SET ROLE regress_cr_other;
SELECT count(*) AS visible FROM synchub.integrations WHERE name LIKE 'cr\_%';
SELECT (SELECT count(*) FROM synchub.schedules) AS schedules, (SELECT count(*) FROM synchub.sync_state) AS sync_state,
       (SELECT count(*) FROM synchub.contacts) AS contacts;
SELECT pg_temp.err($$INSERT INTO synchub.contacts (integration_id, external_id)
                     SELECT id, 'x' FROM app_id$$);
SELECT pg_temp.err($$SELECT synchub.set_credentials('cr_app', '{"api_token": "stolen"}')$$);
RESET ROLE;
SET ROLE regress_cr_other;
SELECT regexp_replace(pg_temp.err(format($q$SELECT synchub._credentials_store(%s, '{"api_token": "stolen"}')$q$, id)), 'integration -?[0-9]+', 'integration N')
  FROM app_id;
RESET ROLE;
SELECT synchub._credentials_get(id) AS unchanged FROM synchub.integrations WHERE name = 'cr_app';

-- Clean up.
DELETE FROM synchub.job_queue WHERE integration_id IN (SELECT id FROM synchub.integrations WHERE name LIKE 'cr\_%');
DELETE FROM synchub.integrations WHERE name LIKE 'cr\_%';
DROP TABLE app_id, due, public.cr_private;
DROP OWNED BY regress_cr_app, regress_cr_other;
DROP ROLE regress_cr_app;
DROP ROLE regress_cr_other;
