-- Export: options and their errors, change capture into synchub.outbox
-- (coalescing, versions, no capture of unchanged rows, of other
-- integrations or with synchub.capture_changes off), write requests planned
-- for each preset (batches, keys, update paths, rows without a key, deleted
-- and archived rows), per-record results of each result style, split of a
-- refused batch, and storing results (ids written back, rejects, outbox).
\i test/regress_setup.sql
SET synchub.notify = off;
-- The worker stays away from the jobs enqueued here.
SELECT synchub.stop_worker() IS NOT NULL AS worker_stopped;
CREATE SCHEMA connectors_ex;

SELECT synchub.create_integration('ex_hs', 'hubspot', 'http://127.0.0.1:9', '{"token": "hs-secret"}',
                                  '{"export": true}') > 0 AS created;
SELECT synchub.create_integration('ex_sf', 'salesforce', 'https://acme.my.salesforce.com', '{"token": "sf-secret"}',
                                  '{"export": true, "external_id_field": "Synchub_Key__c", "write_key": "{email}"}') > 0 AS created;
SELECT synchub.create_integration('ex_pd', 'pipedrive', 'https://api.pipedrive.com', '{"token": "pd-secret"}',
                                  '{"export": true}') > 0 AS created;
SELECT synchub.create_integration('ex_off', 'hubspot', 'http://127.0.0.1:9', '{"token": "t"}') > 0 AS created;
CREATE FUNCTION pg_temp.iid(n text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM synchub.integrations WHERE name = n $$;

-- Options.
SELECT pg_temp.err($$SELECT synchub.create_integration('x', 'hubspot', 'http://h', '{}', '{"export": "yes"}')$$);
SELECT pg_temp.err($$SELECT synchub.create_integration('x', 'hubspot', 'http://h', '{}', '{"write_key": "email"}')$$);
INSERT INTO synchub.providers (name, spec) SELECT 'ex_readonly', spec - 'write' FROM synchub.providers WHERE name = 'hubspot';
SELECT pg_temp.err($$SELECT synchub.create_integration('x', 'ex_readonly', 'http://h', '{}', '{"export": true}')$$);
SELECT pg_temp.err($$SELECT synchub.sync('ex_off', 'export')$$);
CREATE TABLE connectors_ex.nokey (integration_id bigint, external_id text, email text, UNIQUE (integration_id, external_id));
SELECT pg_temp.err($$SELECT synchub.create_integration('x', 'hubspot', 'http://h', '{}',
                     '{"export": true, "target": "connectors_ex.nokey"}')$$);
CREATE TABLE connectors_ex.leads (lead_id serial PRIMARY KEY, integration_id bigint, external_id text, email text,
                                  first_name text, last_name text, UNIQUE (integration_id, external_id));
SELECT synchub.create_integration('ex_leads', 'hubspot', 'http://127.0.0.1:9', '{"token": "t"}',
                                  '{"export": true, "target": "connectors_ex.leads"}') > 0 AS created;
SELECT tgname, tgrelid::regclass FROM pg_trigger WHERE tgname = 'synchub_export_capture' ORDER BY 2::text;

-- Capture.
INSERT INTO synchub.contacts (integration_id, external_id, email, first_name, last_name, company, phone)
VALUES (pg_temp.iid('ex_hs'), NULL, 'new@example.com', 'Nina', 'New', 'Acme', '+1 555'),
       (pg_temp.iid('ex_hs'), '101', 'old@example.com', 'Otto', 'Old', NULL, NULL),
       (pg_temp.iid('ex_hs'), NULL, NULL, 'No', 'Email', NULL, NULL),
       (pg_temp.iid('ex_off'), '7', 'off@example.com', NULL, NULL, NULL, NULL);
SELECT integration_id = pg_temp.iid('ex_hs') AS hs, version, row_key ? 'id' AS by_id FROM synchub.outbox ORDER BY id;
UPDATE synchub.contacts SET first_name = 'Otto' WHERE external_id = '101';          -- no change
UPDATE synchub.contacts SET phone = '+49 1' WHERE external_id = '101';
UPDATE synchub.contacts SET phone = '+49 2' WHERE external_id = '101';
UPDATE synchub.contacts SET phone = '+1' WHERE external_id = '7';                   -- not exporting
SET synchub.capture_changes = off;
UPDATE synchub.contacts SET company = 'Quiet' WHERE email = 'new@example.com';
RESET synchub.capture_changes;
SELECT c.email, o.version FROM synchub.outbox o JOIN synchub.contacts c ON c.id = (o.row_key->>'id')::bigint ORDER BY o.id;
INSERT INTO connectors_ex.leads (integration_id, email) VALUES (pg_temp.iid('ex_leads'), 'lead@example.com');
SELECT row_key FROM synchub.outbox WHERE integration_id = pg_temp.iid('ex_leads');
SELECT synchub.sync('ex_hs', 'export') > 0 AS enqueued;
-- An outbox entry of ex_hs naming a row of another integration (ex_off's)
-- is dropped at planning, never sent; an integration without export is
-- not planned at all.
INSERT INTO synchub.outbox (integration_id, row_key)
SELECT pg_temp.iid('ex_hs'), jsonb_build_object('id', id) FROM synchub.contacts WHERE external_id = '7';
SELECT pg_temp.err($$SELECT synchub._export_plan(pg_temp.iid('ex_off'), NULL)$$);

-- HubSpot: one batch upsert by email; the row without an email is refused
-- before any request.
CREATE TEMP TABLE req AS SELECT synchub._provider_next_request(pg_temp.iid('ex_hs'), 'export') AS r;
SELECT r->>'method' AS method, r->>'url' AS url, r->'headers'->>'Authorization' AS auth,
       jsonb_pretty(r->'body') AS body FROM req;
SELECT jsonb_array_length(r->'checkpoint'->'batch') AS batch, r->'checkpoint'->>'total' AS total,
       r->'checkpoint' #>> '{counts,rejected}' AS rejected FROM req;
SELECT r::text LIKE '%off@example.com%' AS other_integration_sent,
       (SELECT count(*) FROM synchub.outbox o JOIN synchub.contacts c ON c.id = (o.row_key->>'id')::bigint
         WHERE o.integration_id = pg_temp.iid('ex_hs') AND c.external_id = '7') AS forged_entries_left
  FROM req;
SELECT external_id, record->>'last_name' AS last_name, error FROM synchub.rejects WHERE integration_id = pg_temp.iid('ex_hs');
-- 207: one created, one refused.
CREATE TEMP TABLE page AS
SELECT synchub._provider_parse_page('hubspot', 'export', r->'checkpoint', 207, '{}',
    $${"status": "COMPLETE",
       "results": [{"id": "555", "properties": {"email": "NEW@example.com"}, "new": true}],
       "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid: [phone]",
                   "context": {"ids": ["old@example.com"]}}]}$$) AS p FROM req;
SELECT e->>'key' AS key, e->>'ok' AS ok, e->>'id' AS id, e->>'error' AS error
  FROM page, jsonb_array_elements(p->'results') e;
SELECT p->>'records_total' AS total, p->'checkpoint' ? 'batch' AS keeps_batch FROM page;
-- A row changed while in flight stays queued.
UPDATE synchub.contacts SET last_name = 'Older' WHERE external_id = '101';
SELECT c - 'run_started_at' AS checkpoint
  FROM page, synchub._export_apply(pg_temp.iid('ex_hs'), 42, p->'checkpoint', p->'results') c;
SELECT email, external_id FROM synchub.contacts WHERE integration_id = pg_temp.iid('ex_hs') ORDER BY id;
SELECT job_id, external_id, error FROM synchub.rejects WHERE integration_id = pg_temp.iid('ex_hs') ORDER BY id;
SELECT c.email, o.version FROM synchub.outbox o JOIN synchub.contacts c ON c.id = (o.row_key->>'id')::bigint
 WHERE o.integration_id = pg_temp.iid('ex_hs');
-- The provider's id is taken by another row: a reject, not an error.
INSERT INTO synchub.contacts (integration_id, external_id, email) VALUES (pg_temp.iid('ex_hs'), NULL, 'dup@example.com');
SELECT synchub._export_apply(pg_temp.iid('ex_hs'), 43, '{"mode": "export"}',
    jsonb_build_array(jsonb_build_object('entry', o.id, 'v', o.version, 'row_key', o.row_key, 'external_id', NULL,
                                         'key', 'dup@example.com', 'ok', true, 'id', '555'))) #>> '{counts,rejected}' AS rejected
  FROM synchub.outbox o WHERE o.row_key->>'id' = (SELECT id::text FROM synchub.contacts WHERE email = 'dup@example.com');
SELECT error FROM synchub.rejects WHERE job_id = 43;

-- A batch refused as a whole is split in two halves, sent first; a single
-- record refused so is a per-record failure.
SELECT p->'split' AS split, jsonb_array_length(p->'checkpoint'->'split') AS parts,
       jsonb_array_length(p->'checkpoint'->'split'->0) + jsonb_array_length(p->'checkpoint'->'split'->1) AS entries
  FROM synchub._provider_parse_page('hubspot', 'export',
         '{"mode": "export", "split": [], "batch": [{"entry": 1, "key": "a"}, {"entry": 2, "key": "b"}, {"entry": 3, "key": "c"}]}',
         409, '{}', '{"status": "error", "message": "Contact already exists. Existing ID: 9", "category": "CONFLICT"}') p;
SELECT p->'results'->0->>'error' AS error, p->'results'->0->>'ok' AS ok
  FROM synchub._provider_parse_page('hubspot', 'export', '{"mode": "export", "batch": [{"entry": 1, "key": "a"}]}',
         409, '{}', '{"status": "error", "message": "Contact already exists. Existing ID: 9", "category": "CONFLICT"}') p;
-- Errors of the request itself keep their class (and the batch, for a retry).
SELECT p->'error'->>'class' AS class, p->'checkpoint' ? 'batch' AS keeps_batch
  FROM (VALUES (429), (401), (503)) s(status),
       synchub._provider_parse_page('hubspot', 'export', '{"mode": "export", "batch": [{"entry": 1}, {"entry": 2}]}',
                                    s.status, '{}', NULL) p;
SELECT p->'error'->>'class' AS class
  FROM synchub._provider_parse_page('salesforce', 'export', '{"mode": "export", "batch": [{"entry": 1}, {"entry": 2}]}',
         403, '{}', '[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]') p;
-- The split halves go first.
UPDATE synchub.contacts SET phone = '+1 556' WHERE email = 'new@example.com';
INSERT INTO synchub.contacts (integration_id, email) SELECT pg_temp.iid('ex_hs'), 'bulk' || g || '@example.com' FROM generate_series(1, 4) g;
SELECT jsonb_array_length(r->'checkpoint'->'batch') AS batch, r->'checkpoint'->'split' AS split_left,
       (SELECT array_agg(b->>'key' ORDER BY b->>'key') FROM jsonb_array_elements(r->'checkpoint'->'batch') b) AS keys
  FROM (SELECT synchub._provider_next_request(pg_temp.iid('ex_hs'), 'export',
          jsonb_build_object('mode', 'export', 'upto', 1000000, 'read', 0,
                             'split', jsonb_build_array((SELECT jsonb_agg(id ORDER BY id) FROM (SELECT id FROM synchub.outbox
                                                          WHERE integration_id = pg_temp.iid('ex_hs') ORDER BY id LIMIT 2) s),
                                                        '[]'::jsonb))) AS r) q;

-- Salesforce: composite upsert by the configured external id field, keyed
-- by the write_key option; results in input order.
INSERT INTO synchub.contacts (integration_id, external_id, email, first_name, last_name)
VALUES (pg_temp.iid('ex_sf'), '003A', 'a@example.com', 'Ann', 'A'), (pg_temp.iid('ex_sf'), NULL, 'b@example.com', NULL, 'B');
SELECT r->>'method' AS method, r->>'url' AS url, jsonb_pretty(r->'body') AS body
  FROM synchub._provider_next_request(pg_temp.iid('ex_sf'), 'export') r;
SELECT e->>'ok' AS ok, e->>'id' AS id, e->>'error' AS error
  FROM synchub._provider_parse_page('salesforce', 'export',
         '{"mode": "export", "batch": [{"entry": 1, "key": "a"}, {"entry": 2, "key": "b"}, {"entry": 3, "key": "c"}]}', 200, '{}',
         $$[{"id": "003A", "success": true, "errors": [], "created": false},
            {"id": null, "success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]"}]}]$$) p,
       jsonb_array_elements(p->'results') e;

-- Pipedrive: one record a call, PATCH by id when the row has one; empty
-- email and phone elements are left out.
INSERT INTO synchub.contacts (integration_id, external_id, email, first_name, last_name, phone)
VALUES (pg_temp.iid('ex_pd'), '12', 'p@example.com', 'Pia', NULL, NULL);
SELECT r->>'method' AS method, r->>'url' AS url, r->'headers'->>'x-api-token' AS token, r->'body' AS body
  FROM synchub._provider_next_request(pg_temp.iid('ex_pd'), 'export') r;
INSERT INTO synchub.contacts (integration_id, external_id, email, first_name, last_name, phone)
VALUES (pg_temp.iid('ex_pd'), NULL, NULL, NULL, NULL, '+1 2');
DELETE FROM synchub.outbox WHERE integration_id = pg_temp.iid('ex_pd') AND row_key->>'id' = (SELECT id::text FROM synchub.contacts WHERE external_id = '12');
SELECT r->>'method' AS method, r->>'url' AS url, r->'body' AS body
  FROM synchub._provider_next_request(pg_temp.iid('ex_pd'), 'export') r;
SELECT p->'results'->0->>'ok' AS ok, p->'results'->0->>'id' AS id, p->'results'->0->>'error' AS error
  FROM (VALUES (200, '{"success": true, "data": {"id": 77, "name": "Pia"}}'::jsonb),
               (400, '{"success": false, "error": "name: Required", "code": "ERR_SCHEMA_VALIDATION_FAILED"}')) s(st, b),
       synchub._provider_parse_page('pipedrive', 'export', '{"mode": "export", "batch": [{"entry": 5}]}', s.st, '{}', s.b) p;

-- Deleted and archived rows leave the outbox without a request; with
-- nothing left the run is done.
DELETE FROM synchub.contacts WHERE integration_id = pg_temp.iid('ex_pd');
SELECT r->'done' AS done, r->'checkpoint'->>'total' AS total
  FROM synchub._provider_next_request(pg_temp.iid('ex_pd'), 'export') r;
SELECT count(*) AS left_in_outbox FROM synchub.outbox WHERE integration_id = pg_temp.iid('ex_pd');

-- Spec validation of the write endpoint.
CREATE FUNCTION pg_temp.bad(change text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s jsonb;
BEGIN
    SELECT spec INTO s FROM synchub.providers WHERE name = 'hubspot';
    EXECUTE 'SELECT ' || change INTO s USING s;
    RETURN pg_temp.err(format('INSERT INTO synchub.providers VALUES (%L, %L)', 'ex_bad', s));
END $$;
SELECT pg_temp.bad($$jsonb_set($1, '{write,body}', '{"inputs": []}')$$);
SELECT pg_temp.bad($$$1 #- '{write,record}'$$);
SELECT pg_temp.bad($$$1 #- '{write,result,result_key}'$$);
SELECT pg_temp.bad($$jsonb_set($1, '{write,update_path}', '"/x/{external_id}"')$$);
SELECT pg_temp.bad($$jsonb_set(jsonb_set($1, '{write,update_path}', '"/x/{external_id}"'), '{write,update_method}', '"PATCH"')$$);
SELECT pg_temp.bad($$jsonb_set($1, '{write,key}', '5')$$);
SELECT pg_temp.bad($$jsonb_set($1, '{write,result,style}', '"single"')$$);

-- A role editing contacts of an exporting integration it owns queues the
-- change itself with exactly the grants of docs/privileges.md; without the
-- outbox grants its write fails rather than going unexported.
CREATE ROLE ex_app;
GRANT USAGE ON SCHEMA synchub TO ex_app;
GRANT SELECT, INSERT, UPDATE ON synchub.contacts TO ex_app;
GRANT SELECT ON synchub.integrations TO ex_app;
UPDATE synchub.integrations SET owner = 'ex_app' WHERE name = 'ex_pd';
SET ROLE ex_app;
SELECT pg_temp.err($$INSERT INTO synchub.contacts (integration_id, email) SELECT id, 'app@example.com' FROM synchub.integrations WHERE name = 'ex_pd'$$);
RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON synchub.outbox TO ex_app;
SET ROLE ex_app;
INSERT INTO synchub.contacts (integration_id, email) SELECT id, 'app@example.com' FROM synchub.integrations WHERE name = 'ex_pd';
UPDATE synchub.contacts SET first_name = 'App' WHERE email = 'app@example.com';
SELECT version, (SELECT count(*) FROM synchub.integrations) AS sees_integrations FROM synchub.outbox;
RESET ROLE;
REVOKE ALL ON synchub.contacts, synchub.integrations, synchub.outbox FROM ex_app;
REVOKE ALL ON SCHEMA synchub FROM ex_app;

DROP SCHEMA connectors_ex CASCADE;
DELETE FROM synchub.integrations WHERE name LIKE 'ex\_%';
DELETE FROM synchub.providers WHERE name = 'ex_readonly';
DELETE FROM synchub.rejects;
DROP ROLE ex_app;
SELECT synchub.start_worker() IS NOT NULL AS worker_started;
