-- Request planning and page parsing for each provider preset, from pages
-- in the providers' own formats (as the mock servers and the real APIs
-- answer): pagination styles, checkpoints, the incremental bookmark and its
-- (updated_at, id) tie-break, HubSpot's search cap, deletes and archives,
-- error classes, rate signals, record mapping and credential injection.
\i test/regress_setup.sql
SET synchub.notify = off;
CREATE SCHEMA connectors_rq;
CREATE TABLE connectors_rq.people (
    integration_id bigint NOT NULL, external_id text NOT NULL, full_name text, email text,
    tags jsonb, UNIQUE (integration_id, external_id));

SELECT synchub.create_integration('rq_hs', 'hubspot', 'http://127.0.0.1:9',
    '{"token": "hs-secret", "refresh_token": "hs-refresh", "client_id": "cid-1"}', '{"page_size": 2}') > 0 AS created;
SELECT synchub.create_integration('rq_sf', 'salesforce', 'https://acme.my.salesforce.com',
    '{"access_token": "sf-secret"}', '{"page_size": 200, "lookback_seconds": 0, "properties": ["Id", "Email", "SystemModstamp"]}') > 0 AS created;
SELECT synchub.create_integration('rq_pd', 'pipedrive', 'https://api.pipedrive.com',
    '{"api_token": "pd-secret"}', '{"page_size": 2, "target": "connectors_rq.people",
      "field_map": {"full_name": "name", "tags": "custom_fields"}}') > 0 AS created;
-- A user provider: Pipedrive v1, offset pagination, token in the query string.
INSERT INTO synchub.providers (name, spec)
SELECT 'rq_pd_v1', spec - 'requests' - 'modes' - 'record' - 'field_map' || $json${
  "auth": {"style": "query", "name": "api_token", "credential": "api_token"},
  "requests": {"list": {
      "method": "GET", "path": "/v1/persons", "query": {"start": "0", "limit": "{page_size}"},
      "page_size": {"default": 100, "max": 500},
      "pagination": {"style": "offset", "param": "start", "next": "additional_data.pagination.next_start",
                     "more": "additional_data.pagination.more_items_in_collection"},
      "records": "data"}},
  "modes": {"full": ["list"]},
  "record": {"id": "id", "updated_at": "update_time", "updated_at_format": "utc_naive"},
  "field_map": {"email": "email[0].value", "first_name": "first_name", "last_name": "last_name",
                "company": "org_name", "phone": "phone[0].value"}}$json$::jsonb
  FROM synchub.providers WHERE name = 'pipedrive';
SELECT synchub.create_integration('rq_v1', 'rq_pd_v1', 'https://api.pipedrive.com', '{"api_token": "a b&c"}',
                                  '{"page_size": 2}') > 0 AS created;
-- HubSpot with a search cap of 5 results, to page past it with few records.
INSERT INTO synchub.providers (name, spec)
SELECT 'rq_hs_cap', jsonb_set(spec, '{requests,search,result_cap}', '5') FROM synchub.providers WHERE name = 'hubspot';
SELECT synchub.create_integration('rq_cap', 'rq_hs_cap', 'http://127.0.0.1:9', '{"token": "t"}',
                                  '{"page_size": 2, "lookback_seconds": 0}') > 0 AS created;

CREATE FUNCTION pg_temp.iid(n text) RETURNS bigint LANGUAGE sql AS $$
    SELECT id FROM synchub.integrations WHERE name = n $$;
-- A planned request without its checkpoint; the checkpoint of a planned
-- request with a fixed run start.
CREATE FUNCTION pg_temp.plan(n text, mode text, ck jsonb DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
    SELECT synchub._provider_next_request(pg_temp.iid(n), mode, ck) - 'checkpoint' - 'auth' - 'rate_limit'
           - 'request_rate_limit' - 'timeout_ms' $$;
CREATE FUNCTION pg_temp.ck(n text, mode text, ck jsonb DEFAULT NULL) RETURNS jsonb LANGUAGE sql AS $$
    SELECT synchub._provider_next_request(pg_temp.iid(n), mode, ck)->'checkpoint'
           || CASE WHEN ck IS NULL THEN '{"run_started_at": "2026-12-01T00:00:00.000000Z"}'::jsonb ELSE '{}'::jsonb END $$;
-- Mapped rows, with integration_id checked and left out.
CREATE FUNCTION pg_temp.rows(n text, recs jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$
    SELECT CASE WHEN (r->>'integration_id')::bigint = pg_temp.iid(n) THEN r - 'integration_id' END
      FROM jsonb_array_elements(synchub._provider_map_rows(pg_temp.iid(n), recs)) WITH ORDINALITY t(r, i) ORDER BY i $$;
-- A parsed page without its records (shown apart).
CREATE FUNCTION pg_temp.show(page jsonb) RETURNS TABLE (k text, v jsonb) LANGUAGE sql AS $$
    SELECT key, value FROM jsonb_each(page - 'records') WHERE key <> 'checkpoint'
    UNION ALL
    SELECT 'checkpoint.' || key, value FROM jsonb_each(page->'checkpoint')
     WHERE key IN ('phase', 'cursor', 'since', 'since_id', 'read', 'slice_read', 'slice_base', 'request',
                   'max_seen', 'max_seen_id', 'last_ts', 'last_id')
    ORDER BY 1 $$;

-------------------------------------------------------------------------------
-- Helpers: field paths, time formats, templates
-------------------------------------------------------------------------------
SELECT p, synchub._json_path_valid(p) AS valid, synchub._json_path(p) AS path
  FROM unnest(ARRAY['properties.email', 'emails[0].value', '[0].errorCode', '$', 'Account.Name',
                    'a..b', 'a[x]', '', '.a', 'a.']) p;
SELECT v, f, synchub._ts_text(synchub._parse_updated(v, f)) AS parsed
  FROM (VALUES ('2024-05-01T10:00:00.123Z', 'iso8601'), ('2024-05-01T10:00:00.000+0000', 'iso8601'),
               ('2024-05-01T12:00:00+02:00', 'iso8601'), ('2024-05-01T10:00:00Z', 'iso8601'),
               ('2024-05-01 10:00:00', 'utc_naive'), ('2024-05-01T10:00:00', 'iso8601'),
               ('1714557600123', 'epoch_ms'), ('yesterday', 'iso8601'), ('12:00', 'utc_naive'),
               ('17145576001230000000', 'epoch_ms'), (NULL, 'iso8601')) t(v, f);
SELECT f, synchub._format_since('2024-05-01 10:00:00.123456+00', f)
  FROM unnest(ARRAY['epoch_ms', 'iso8601', 'iso8601_seconds']) f;
SELECT synchub._template('{"n": "{page_size}", "p": "{properties}", "q": "x in ({properties}) and id > ''{since_id}''",
                           "keep": "{unknown}", "list": ["{page_size}", 1, null], "nested": {"a": "{since_id}"}}',
                         '{"page_size": 50, "properties": ["a", "b"], "since_id": "O''Brien\\"}');
SELECT synchub._url_encode('a b&c=d/é~_.-');

-------------------------------------------------------------------------------
-- HubSpot: full import (list by cursor, then archived records)
-------------------------------------------------------------------------------
SELECT pg_temp.plan('rq_hs', 'full');
CREATE TEMP TABLE hs_pages (n int, page jsonb);
INSERT INTO hs_pages SELECT 1, synchub._provider_parse_page('hubspot', 'full', pg_temp.ck('rq_hs', 'full'), 200,
    '{"Content-Type": "application/json", "X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "97",
      "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}',
    $json${"results":[
      {"id":"501","properties":{"email":"kevin.walker.1@example.com","firstname":"Kevin","lastname":"Walker","company":"Acme Partners","phone":"+1-466-555-9024","lastmodifieddate":"2026-11-07T23:23:33.684Z","createdate":"2026-10-11T15:39:25.789Z","hs_object_id":"501"},"createdAt":"2026-10-11T15:39:25.789Z","updatedAt":"2026-11-07T23:23:33.684Z","archived":false},
      {"id":"502","properties":{"email":"paul.sanchez.2@example.org","firstname":"Paul","lastname":"Sanchez","company":null,"phone":null,"lastmodifieddate":"2026-08-30T01:41:32.945Z","createdate":"2026-07-31T16:28:59.559Z","hs_object_id":"502"},"createdAt":"2026-07-31T16:28:59.559Z","updatedAt":"2026-08-30T01:41:32.945Z","archived":false}],
     "paging":{"next":{"after":"503","link":"http://127.0.0.1:9/crm/v3/objects/contacts?limit=2&after=503"}}}$json$);
SELECT * FROM pg_temp.show((SELECT page FROM hs_pages WHERE n = 1));
SELECT jsonb_array_length(page->'records') AS records FROM hs_pages WHERE n = 1;
SELECT pg_temp.rows('rq_hs', page->'records') FROM hs_pages WHERE n = 1;
-- Page 2 follows the cursor; it is the list's last page (no "paging").
SELECT pg_temp.plan('rq_hs', 'full', page->'checkpoint')->>'url' FROM hs_pages WHERE n = 1;
INSERT INTO hs_pages SELECT 2, synchub._provider_parse_page('hubspot', 'full', page->'checkpoint', 200, '{}',
    $json${"results":[{"id":"503","properties":{"email":"a@x.com","lastmodifieddate":"2026-11-20T10:00:00.000Z"},"archived":false}]}$json$)
  FROM hs_pages WHERE n = 1;
SELECT * FROM pg_temp.show((SELECT page FROM hs_pages WHERE n = 2));
-- Then the archived records (archiving does not change lastmodifieddate).
SELECT pg_temp.plan('rq_hs', 'full', page->'checkpoint')->>'url' FROM hs_pages WHERE n = 2;
INSERT INTO hs_pages SELECT 3, synchub._provider_parse_page('hubspot', 'full', page->'checkpoint', 200, '{}',
    $json${"results":[{"id":"499","properties":{"email":"gone@x.com","lastmodifieddate":"2026-01-01T00:00:00.000Z"},"archived":true,"archivedAt":"2026-11-24T21:18:25.809Z"}]}$json$)
  FROM hs_pages WHERE n = 2;
SELECT * FROM pg_temp.show((SELECT page FROM hs_pages WHERE n = 3));
SELECT pg_temp.rows('rq_hs', page->'records') FROM hs_pages WHERE n = 3;
-- The run is over: planning past it is an error.
SELECT pg_temp.err(format('SELECT synchub._provider_next_request(%s, %L, %L)', pg_temp.iid('rq_hs'), 'full', page->'checkpoint'))
  FROM hs_pages WHERE n = 3;

-------------------------------------------------------------------------------
-- HubSpot: incremental search, sliced past the search cap by (updated_at, id)
-------------------------------------------------------------------------------
INSERT INTO synchub.sync_state (integration_id, bookmark)
VALUES (pg_temp.iid('rq_cap'), '{"since": "2026-11-01T00:00:00.000Z", "since_id": null}');
SELECT pg_temp.plan('rq_cap', 'incremental');
CREATE TEMP TABLE cap_pages (n int, page jsonb);
INSERT INTO cap_pages SELECT 1, synchub._provider_parse_page('rq_hs_cap', 'incremental', pg_temp.ck('rq_cap', 'incremental'), 200, '{}',
    $json${"total":7,"results":[
      {"id":"510","properties":{"lastmodifieddate":"2026-11-02T00:00:00.000Z"},"archived":false},
      {"id":"507","properties":{"lastmodifieddate":"2026-11-03T00:00:00.000Z"},"archived":false}],
     "paging":{"next":{"after":"2"}}}$json$);
SELECT * FROM pg_temp.show((SELECT page FROM cap_pages WHERE n = 1));
SELECT pg_temp.plan('rq_cap', 'incremental', page->'checkpoint')->'body'->'after' AS after FROM cap_pages WHERE n = 1;
-- Two records share a timestamp; 4 read + a page of 2 would pass the cap of 5.
INSERT INTO cap_pages SELECT 2, synchub._provider_parse_page('rq_hs_cap', 'incremental', page->'checkpoint', 200, '{}',
    $json${"total":7,"results":[
      {"id":"505","properties":{"lastmodifieddate":"2026-11-04T00:00:00.000Z"},"archived":false},
      {"id":"509","properties":{"lastmodifieddate":"2026-11-04T00:00:00.000Z"},"archived":false}],
     "paging":{"next":{"after":"4"}}}$json$)
  FROM cap_pages WHERE n = 1;
SELECT * FROM pg_temp.show((SELECT page FROM cap_pages WHERE n = 2));
-- The new slice starts after (2026-11-04, 509): same time with a greater id, or later.
SELECT pg_temp.plan('rq_cap', 'incremental', page->'checkpoint')->'body' AS body FROM cap_pages WHERE n = 2;
INSERT INTO cap_pages SELECT 3, synchub._provider_parse_page('rq_hs_cap', 'incremental', page->'checkpoint', 200, '{}',
    $json${"total":3,"results":[
      {"id":"512","properties":{"lastmodifieddate":"2026-11-04T00:00:00.000Z"},"archived":false},
      {"id":"501","properties":{"lastmodifieddate":"2026-11-05T00:00:00.000Z"},"archived":false},
      {"id":"502","properties":{"lastmodifieddate":"2026-11-06T00:00:00.000Z"},"archived":false}]}$json$)
  FROM cap_pages WHERE n = 2;
SELECT * FROM pg_temp.show((SELECT page FROM cap_pages WHERE n = 3));
-- No archived records: the run ends.  Without look-back, and with every
-- record older than the run start, the bookmark is the last (updated_at, id).
INSERT INTO cap_pages SELECT 4, synchub._provider_parse_page('rq_hs_cap', 'incremental', page->'checkpoint', 200, '{}',
    '{"results": []}')
  FROM cap_pages WHERE n = 3;
SELECT page->'done' AS done, page->'bookmark' AS bookmark FROM cap_pages WHERE n = 4;
-- The next run starts from it.
UPDATE synchub.sync_state SET bookmark = (SELECT page->'bookmark' FROM cap_pages WHERE n = 4)
 WHERE integration_id = pg_temp.iid('rq_cap');
SELECT pg_temp.plan('rq_cap', 'incremental')->'body'->'filterGroups' AS filters;
-- A full import does not use the bookmark.
SELECT pg_temp.ck('rq_cap', 'full')->'since' AS full_since;

-------------------------------------------------------------------------------
-- Bookmarks: min(max seen, run start) minus the look-back
-------------------------------------------------------------------------------
SELECT synchub._next_bookmark(ck) AS bookmark, note
  FROM (VALUES
    ('{"max_seen": "2026-11-06T00:00:00Z", "max_seen_id": "9", "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 60,
       "start_since": "2026-01-01T00:00:00Z", "start_since_id": null}'::jsonb, 'look-back from the last record'),
    ('{"max_seen": "2026-12-01T00:05:00Z", "max_seen_id": "9", "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 60,
       "start_since": "2026-01-01T00:00:00Z", "start_since_id": null}', 'changed during the run: from the run start'),
    ('{"max_seen": "2026-12-01T00:05:00Z", "max_seen_id": "9", "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 0,
       "start_since": "2026-01-01T00:00:00Z", "start_since_id": null}', 'no look-back, changed during the run'),
    ('{"max_seen": "2026-11-06T00:00:00Z", "max_seen_id": "9", "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 0,
       "start_since": "2026-01-01T00:00:00Z", "start_since_id": null}', 'no look-back: tie-break id kept'),
    ('{"max_seen": null, "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 60,
       "start_since": "2026-11-01T00:00:00Z", "start_since_id": "4"}', 'nothing seen: unchanged'),
    ('{"max_seen": "2026-11-01T00:00:30Z", "max_seen_id": "5", "run_started_at": "2026-12-01T00:00:00Z", "lookback_seconds": 60,
       "start_since": "2026-11-01T00:00:00Z", "start_since_id": "4"}', 'never before the start')
  ) t(ck, note);

-------------------------------------------------------------------------------
-- Salesforce: SOQL with the keyset, nextRecordsUrl, queryAll for deletes
-------------------------------------------------------------------------------
SELECT pg_temp.plan('rq_sf', 'full');
SELECT pg_temp.plan('rq_sf', 'incremental')->>'url' AS url;
CREATE TEMP TABLE sf_pages (n int, page jsonb);
INSERT INTO sf_pages SELECT 1, synchub._provider_parse_page('salesforce', 'incremental', pg_temp.ck('rq_sf', 'incremental'), 200,
    '{"Sforce-Limit-Info": "api-usage=17/15000"}',
    $json${"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v60.0/queryAll/01gDn000000ABCD-200","records":[
      {"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003Dn000000000TIAQ"},"Id":"003Dn000000000TIAQ","Email":"lisa.ramirez.29@example.com","FirstName":"Lisa","LastName":"Ramirez","Phone":"+1-204-555-6229","Account":{"attributes":{"type":"Account","url":"/services/data/v60.0/sobjects/Account/001Dn000000000PIAQ"},"Name":"Stark Holdings"},"SystemModstamp":"2026-08-29T00:33:18.488+0000","IsDeleted":false},
      {"attributes":{"type":"Contact","url":"/services/data/v60.0/sobjects/Contact/003Dn000000000OIAQ"},"Id":"003Dn000000000OIAQ","Email":"joshua.clark.24@example.com","FirstName":"Joshua","LastName":"Clark","Phone":null,"Account":null,"SystemModstamp":"2026-08-29T22:30:54.080+0000","IsDeleted":true}]}$json$);
SELECT * FROM pg_temp.show((SELECT page FROM sf_pages WHERE n = 1));
SELECT r->>'external_id' AS id, r->>'email' AS email, r->>'company' AS company, r->>'archived' AS archived,
       r->>'remote_updated_at' AS remote_updated_at, r->'properties'->>'FirstName' AS first_name_in_properties
  FROM sf_pages, jsonb_array_elements(synchub._provider_map_rows(pg_temp.iid('rq_sf'), page->'records')) r WHERE n = 1;
-- The next batch is a GET on nextRecordsUrl, on the integration's host.
SELECT pg_temp.plan('rq_sf', 'incremental', page->'checkpoint') FROM sf_pages WHERE n = 1;
SELECT pg_temp.err(format('SELECT synchub._provider_next_request(%s, %L, %L)', pg_temp.iid('rq_sf'), 'incremental',
                          page->'checkpoint' || '{"cursor": "https://evil.example/services/data/v60.0/query/x"}'))
  FROM sf_pages WHERE n = 1;
-- An expired query locator: restart from the last committed record.
INSERT INTO sf_pages SELECT 2, synchub._provider_parse_page('salesforce', 'incremental', page->'checkpoint', 400, '{}',
    '[{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]')
  FROM sf_pages WHERE n = 1;
SELECT page->'error' AS error, page #> '{checkpoint,cursor}' AS cursor, page #> '{checkpoint,since}' AS since,
       page #> '{checkpoint,since_id}' AS since_id
  FROM sf_pages WHERE n = 2;
SELECT pg_temp.plan('rq_sf', 'incremental', page->'checkpoint')->>'url' AS url FROM sf_pages WHERE n = 2;
INSERT INTO sf_pages SELECT 3, synchub._provider_parse_page('salesforce', 'incremental', page->'checkpoint', 200, '{}',
    $json${"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"003Dn000000000UIAQ","SystemModstamp":"2026-08-30T00:00:00.000+0000","IsDeleted":false}]}$json$)
  FROM sf_pages WHERE n = 2;
SELECT * FROM pg_temp.show((SELECT page FROM sf_pages WHERE n = 3));
-- The daily quota is used up: pause, do not retry.  A dead session: refresh.
SELECT synchub._provider_parse_page('salesforce', 'incremental', page->'checkpoint', 403,
           '{"Sforce-Limit-Info": "api-usage=15000/15000"}',
           '[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]') - 'checkpoint'
  FROM sf_pages WHERE n = 1;
SELECT synchub._provider_parse_page('salesforce', 'incremental', page->'checkpoint', 401, '{}',
           '[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]')->'error'
  FROM sf_pages WHERE n = 1;

-------------------------------------------------------------------------------
-- Pipedrive v2: cursor, updated_since, custom target and field map
-------------------------------------------------------------------------------
INSERT INTO synchub.sync_state (integration_id, bookmark)
VALUES (pg_temp.iid('rq_pd'), '{"since": "2026-08-29T00:33:18.500Z", "since_id": null}');
SELECT pg_temp.plan('rq_pd', 'incremental');
CREATE TEMP TABLE pd_pages (n int, page jsonb);
INSERT INTO pd_pages SELECT 1, synchub._provider_parse_page('pipedrive', 'incremental', pg_temp.ck('rq_pd', 'incremental'), 200,
    '{"x-ratelimit-limit": "80", "x-ratelimit-remaining": "79", "x-ratelimit-reset": "2"}',
    $json${"success":true,"data":[
      {"id":29,"name":"Lisa Ramirez","first_name":"Lisa","last_name":"Ramirez","owner_id":1,"org_id":25,"add_time":"2026-08-06T02:46:40Z","update_time":"2026-08-29T00:33:18Z","emails":[{"value":"lisa.ramirez.29@example.com","primary":true,"label":"work"}],"phones":[],"is_deleted":false,"visible_to":3,"label_ids":[],"custom_fields":{"63d813c221e81fc8337276c064c7db42a6b021bb":null,"7a0993495c2a58266af1fabc2a94958d70497042":73}},
      {"id":24,"name":"Joshua Clark","first_name":"Joshua","last_name":"Clark","owner_id":1,"org_id":21,"add_time":"2026-08-18T23:05:11Z","update_time":"2026-08-29T22:30:54Z","emails":[],"phones":[{"value":"+1-329-555-4136","primary":true,"label":"work"}],"is_deleted":false,"visible_to":3,"label_ids":[],"custom_fields":{}}],
     "additional_data":{"next_cursor":"WzE3ODgwNDI2NTQwMDAsIDI0XQ"}}$json$);
SELECT * FROM pg_temp.show((SELECT page FROM pd_pages WHERE n = 1));
SELECT pg_temp.rows('rq_pd', page->'records') FROM pd_pages WHERE n = 1;
SELECT pg_temp.plan('rq_pd', 'incremental', page->'checkpoint')->>'url' AS url FROM pd_pages WHERE n = 1;
INSERT INTO pd_pages SELECT 2, synchub._provider_parse_page('pipedrive', 'incremental', page->'checkpoint', 200, '{}',
    '{"success": true, "data": [], "additional_data": {"next_cursor": null}}')
  FROM pd_pages WHERE n = 1;
SELECT * FROM pg_temp.show((SELECT page FROM pd_pages WHERE n = 2));
-- Over the limit: 429 without Retry-After; the reset header says when.
SELECT synchub._provider_parse_page('pipedrive', 'incremental', page->'checkpoint', 429,
           '{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}',
           '{"success": false, "error": "Request over limit"}') - 'checkpoint'
  FROM pd_pages WHERE n = 1;
SELECT pg_temp.plan('rq_pd', 'full');

-------------------------------------------------------------------------------
-- A user provider with offset pagination (Pipedrive v1)
-------------------------------------------------------------------------------
SELECT pg_temp.plan('rq_v1', 'full');
CREATE TEMP TABLE v1_pages (n int, page jsonb);
INSERT INTO v1_pages SELECT 1, synchub._provider_parse_page('rq_pd_v1', 'full', pg_temp.ck('rq_v1', 'full'), 200, '{}',
    $json${"success":true,"data":[
      {"id":1,"name":"Kevin Walker","first_name":"Kevin","last_name":"Walker","email":[{"value":"kevin.walker.1@example.com","primary":true,"label":"work"}],"phone":[{"value":"+1-466-555-9024","primary":true,"label":"work"}],"update_time":"2026-11-07 23:23:33","org_name":"Acme Partners","63d813c221e81fc8337276c064c7db42a6b021bb":"Referral"},
      {"id":2,"name":"Paul Sanchez","first_name":"Paul","last_name":"Sanchez","email":[{"value":"","primary":true}],"phone":[{"value":"","primary":true}],"update_time":"2026-08-30 01:41:32","org_name":null}],
     "additional_data":{"pagination":{"start":0,"limit":2,"more_items_in_collection":true,"next_start":2}}}$json$);
SELECT * FROM pg_temp.show((SELECT page FROM v1_pages WHERE n = 1));
SELECT pg_temp.rows('rq_v1', page->'records') FROM v1_pages WHERE n = 1;
SELECT pg_temp.plan('rq_v1', 'full', page->'checkpoint')->>'url' AS url FROM v1_pages WHERE n = 1;
INSERT INTO v1_pages SELECT 2, synchub._provider_parse_page('rq_pd_v1', 'full', page->'checkpoint', 200, '{}',
    '{"success": true, "data": null, "additional_data": {"pagination": {"start": 2, "limit": 2, "more_items_in_collection": false}}}')
  FROM v1_pages WHERE n = 1;
SELECT * FROM pg_temp.show((SELECT page FROM v1_pages WHERE n = 2));

-- One-page requests (pagination "none").
INSERT INTO synchub.providers (name, spec)
SELECT 'rq_one', jsonb_set(spec, '{requests,list,pagination}', '{"style": "none"}') FROM synchub.providers WHERE name = 'rq_pd_v1';
UPDATE synchub.integrations SET provider = 'rq_one' WHERE name = 'rq_v1';
SELECT page - 'records' - 'checkpoint' AS page FROM (
    SELECT synchub._provider_parse_page('rq_one', 'full', pg_temp.ck('rq_v1', 'full'), 200, '{}',
               '{"success": true, "data": [{"id": 7, "update_time": "2026-01-01 00:00:00"}],
                 "additional_data": {"pagination": {"more_items_in_collection": true, "next_start": 1}}}') AS page) p;
-- An absolute next-page URL on the integration's host is followed.
SELECT pg_temp.plan('rq_sf', 'incremental',
           page->'checkpoint' || '{"cursor": "https://acme.my.salesforce.com/services/data/v60.0/query/01gX-400"}')->>'url' AS url
  FROM sf_pages WHERE n = 1;

-------------------------------------------------------------------------------
-- Error classes and rate signals (HubSpot shapes)
-------------------------------------------------------------------------------
SELECT s AS status, h AS headers, synchub._provider_parse_page('hubspot', 'full', pg_temp.ck('rq_hs', 'full'), s, h, b) - 'checkpoint' AS result
  FROM (VALUES
    (429, '{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}'::jsonb, '{"status":"error","message":"slow down","errorType":"RATE_LIMIT"}'::jsonb),
    (429, '{"Retry-After": "3"}', '{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}'),
    (429, '{}', '{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","policyName":"SECONDLY"}'),
    (401, '{}', '{"status":"error","message":"The access token used to make this call is invalid or expired.","correlationId":"d70ae455","category":"INVALID_AUTHENTICATION"}'),
    (400, '{}', '{"status":"error","message":"There was a problem with the request.","category":"VALIDATION_ERROR"}'),
    (503, '{}', NULL),
    (NULL, '{}', NULL),
    (200, '{}', '{"results": {"not": "an array"}}')
  ) t(s, h, b);
SELECT (synchub._provider_parse_page('pipedrive', 'full', pg_temp.ck('rq_pd', 'full'), 401, '{}',
           '{"success":false,"error":"unauthorized access","errorCode":401}'))->'error' AS no_refresh_without_oauth;
-- Parser argument errors.
SELECT pg_temp.err($$SELECT synchub._provider_parse_page('zoho', 'full', '{}', 200, '{}', '{}')$$);
SELECT pg_temp.err($$SELECT synchub._provider_parse_page('hubspot', 'full', NULL, 200, '{}', '{}')$$);
SELECT pg_temp.err($$SELECT synchub._provider_parse_page('hubspot', 'incremental', '{"mode": "full", "phase": 0}', 200, '{}', '{}')$$);
SELECT pg_temp.err(format('SELECT synchub._provider_next_request(%s, %L)', pg_temp.iid('rq_hs'), 'archive'));
SELECT pg_temp.err($$SELECT synchub._provider_next_request(-1, 'full')$$);
SELECT pg_temp.err(format('SELECT synchub._provider_map_rows(%s, %L)', pg_temp.iid('rq_hs'), '{}'));
SELECT pg_temp.err($$SELECT synchub._provider_map_rows(-1, '[]')$$);
-- Odd pages: no body, a scalar body, records that are not objects.
SELECT b AS body, synchub._provider_parse_page('rq_one', 'full', pg_temp.ck('rq_v1', 'full'), s, '{}', b::jsonb)
           - 'checkpoint' - 'rate' - 'bookmark' - 'max_updated_at' - 'max_id' AS page
  FROM (VALUES (204, NULL), (200, '"text"'), (200, '{"data": [1, null]}')) v(s, b);
SELECT pg_temp.rows('rq_hs', '[1, null, {"id": {"a": 1}}]');

-------------------------------------------------------------------------------
-- The engine's view: the real credential (extension owner only)
-------------------------------------------------------------------------------
SELECT synchub._provider_next_request(pg_temp.iid('rq_hs'), 'full')->'auth' AS auth;
SELECT synchub._provider_request(pg_temp.iid('rq_hs'), 'full')->'headers' AS headers;
SELECT synchub._provider_request(pg_temp.iid('rq_pd'), 'full')->'headers' AS headers;
SELECT synchub._provider_request(pg_temp.iid('rq_v1'), 'full')->>'url' AS url;
SELECT synchub._provider_request(pg_temp.iid('rq_sf'), 'full', page->'checkpoint') - 'checkpoint' - 'auth' AS request
  FROM sf_pages WHERE n = 1;
SELECT synchub.set_credentials('rq_pd', '{"password": "x"}');
SELECT pg_temp.err(format('SELECT synchub._provider_request(%s, %L)', pg_temp.iid('rq_pd'), 'full'));
-- OAuth refresh: the form body carries the refresh token and the client id
-- (no client_secret in these credentials, so none is sent).
SELECT synchub._provider_refresh_request(pg_temp.iid('rq_hs'));
SELECT synchub._provider_refresh_apply(pg_temp.iid('rq_hs'),
           '{"token_type": "bearer", "refresh_token": "hs-refresh-2", "access_token": "hs-access-2", "expires_in": 1800}') AS applied;
SELECT synchub._credentials_get(pg_temp.iid('rq_hs')) - 'expires_at' AS credentials,
       synchub._credentials_get(pg_temp.iid('rq_hs')) ? 'expires_at' AS has_expiry;
SELECT synchub._provider_request(pg_temp.iid('rq_hs'), 'full')->'headers'->>'Authorization' AS authorization;
SELECT synchub._provider_refresh_apply(pg_temp.iid('rq_hs'), '{"status": "BAD_REFRESH_TOKEN"}') AS applied;
SELECT pg_temp.err(format('SELECT synchub._provider_refresh_request(%s)', pg_temp.iid('rq_pd')));
SELECT pg_temp.err(format('SELECT synchub._provider_refresh_request(%s)', pg_temp.iid('rq_sf')));

-- Clean up.
DELETE FROM synchub.integrations WHERE name LIKE 'rq\_%';
DELETE FROM synchub.providers WHERE name LIKE 'rq\_%';
DROP SCHEMA connectors_rq CASCADE;
