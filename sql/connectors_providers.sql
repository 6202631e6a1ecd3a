-- Provider specs: the presets, and validation of user-added specs (every
-- error names the bad key, SQLSTATE 22023).
\i test/regress_setup.sql

SELECT name, spec->>'description' AS description,
       spec #>> '{auth,style}' AS auth,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(spec->'requests') k) AS requests,
       spec #> '{modes}' AS modes,
       spec #>> '{write,max_batch}' AS max_batch
  FROM synchub.providers ORDER BY name;

-- Pagination styles and keyset requests of the presets.
SELECT p.name, r.key AS request, r.value #>> '{pagination,style}' AS paging,
       r.value #>> '{pagination,in}' AS cursor_in, r.value->>'keyset' AS keyset,
       r.value->>'since_format' AS since_format, r.value->>'result_cap' AS cap,
       r.value #>> '{page_size,max}' AS max_page
  FROM synchub.providers p, jsonb_each(p.spec->'requests') r ORDER BY 1, 2;

-- A user adds a provider by inserting a spec: a Pipedrive v1 variant with
-- offset pagination and the API token in the query string.
CREATE TABLE pg_temp.base AS
SELECT spec AS s FROM synchub.providers WHERE name = 'pipedrive';
INSERT INTO synchub.providers (name, spec)
SELECT 'pipedrive_v1', s - 'requests' - 'modes' || $json${
  "auth": {"style": "query", "name": "api_token", "credential": "api_token"},
  "requests": {"list": {
      "method": "GET", "path": "/v1/persons",
      "query": {"start": "0", "limit": "{page_size}"},
      "page_size": {"default": 100, "max": 500},
      "pagination": {"style": "offset", "param": "start",
                     "next": "additional_data.pagination.next_start",
                     "more": "additional_data.pagination.more_items_in_collection"},
      "records": "data"}},
  "modes": {"full": ["list"]},
  "record": {"id": "id", "updated_at": "update_time", "updated_at_format": "utc_naive"},
  "field_map": {"email": "email[0].value", "first_name": "first_name", "last_name": "last_name",
                "company": "org_name", "phone": "phone[0].value"}
}$json$::jsonb FROM pg_temp.base;
SELECT name FROM synchub.providers WHERE name = 'pipedrive_v1';
DELETE FROM synchub.providers WHERE name = 'pipedrive_v1';

-- Every malformed spec is refused with the key named.
CREATE FUNCTION pg_temp.bad(expr text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE spec jsonb;
BEGIN
    EXECUTE format('SELECT %s FROM pg_temp.base', expr) INTO spec;
    RETURN pg_temp.err(format('INSERT INTO synchub.providers VALUES (%L, %L::jsonb)', 'custom', spec));
END $f$;

SELECT pg_temp.bad($$'[]'::jsonb$$);
SELECT pg_temp.bad($$s || '{"colour": 1}'$$);
SELECT pg_temp.bad($$s - 'auth'$$);
SELECT pg_temp.bad($$s - 'field_map'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{auth,style}', '"basic"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{auth,name}', '"x y"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{auth,credential}', '[]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{auth,extra}', '1')$$);
SELECT pg_temp.bad($$s || '{"auth": {"style": "bearer", "name": "X", "credential": "token"}}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests}', '{}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,method}', '"DELETE"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,path}', '"persons?x=1"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,query}', '{"limit": 5}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,headers}', '{"bad header": "x"}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,body}', '{"a": 1}')$$);
SELECT pg_temp.bad($$s #- '{requests,list,page_size}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,page_size,default}', '1000')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,page_size,max}', '"500"')$$);
SELECT pg_temp.bad($$s #- '{requests,list,records}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,records}', '"data..x"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,pagination,style}', '"page"')$$);
SELECT pg_temp.bad($$s #- '{requests,list,pagination,next}'$$);
SELECT pg_temp.bad($$s #- '{requests,list,pagination,param}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,pagination,in}', '"body"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,pagination,in}', '"header"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,list,since_format}', '"iso8601"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,updated,since_format}', '"rfc822"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,updated,result_cap}', '0')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,updated,keyset}', '"yes"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{requests,updated,rate_limit}', '{"requests": 0, "per_seconds": 1}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{modes}', '{"incremental": ["updated"]}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{modes,full}', '["nope"]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{modes,incremental}', '["list"]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{modes,export}', '["list"]')$$);
SELECT pg_temp.bad($$s #- '{record,updated_at}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{record,updated_at_format}', '"unix"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{record,archived}', '"a[x]"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{properties}', '"email"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{field_map,email}', '3')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{incremental,lookback_seconds}', '-1')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{incremental,initial_id}', '0')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{write,method}', '"GET"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{write,max_batch}', '0')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{write,result,style}', '"magic"')$$);
SELECT pg_temp.bad($$s #- '{write,result}'$$);
SELECT pg_temp.bad($$jsonb_set(s, '{rate_limit,windows}', '[{"requests": 5}]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{rate_limit,headers,remaining}', '"X-Remaining"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{rate_limit,headers,sleep}', '"x"')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{errors,message}', '5')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{errors,rules}', '[{"status": 403}]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{errors,rules}', '[{"status": 700, "class": "quota"}]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{errors,rules}', '[{"status": 403, "class": "panic"}]')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{oauth}', '{"token_url": "http://x/token", "params": {}, "access_token": "a"}')$$);
SELECT pg_temp.bad($$jsonb_set(s, '{oauth}', '{"token_url": "/token", "params": {"a": 1}, "access_token": "a"}')$$);
-- Updates are validated too; the name must be a lower-case identifier.
SELECT pg_temp.err($$UPDATE synchub.providers SET spec = spec - 'record' WHERE name = 'hubspot'$$);
SELECT pg_temp.err($$INSERT INTO synchub.providers SELECT 'Bad Name', spec FROM synchub.providers WHERE name = 'hubspot'$$);
SELECT count(*) AS providers FROM synchub.providers;
