-------------------------------------------------------------------------------
-- Provider presets: HubSpot CRM v3, Salesforce REST, Pipedrive v2
--
-- Each spec follows the real API (docs/connectors.md explains every key).
-- Templates: a string that is exactly "{name}" becomes the value itself
-- (a number, a string or an array); "{name}" inside a longer string is
-- replaced by the value's text.  Names: page_size, properties, since,
-- since_id.
-------------------------------------------------------------------------------

INSERT INTO synchub.providers (name, spec) VALUES
('hubspot', $json$
{
  "description": "HubSpot CRM v3 contacts",
  "auth": {"style": "bearer", "credential": ["access_token", "token"]},
  "oauth": {
    "token_url": "/oauth/v1/token",
    "params": {"grant_type": "refresh_token", "refresh_token": "{refresh_token}",
               "client_id": "{client_id}", "client_secret": "{client_secret}"},
    "access_token": "access_token", "refresh_token": "refresh_token", "expires_in": "expires_in"
  },
  "requests": {
    "list": {
      "method": "GET", "path": "/crm/v3/objects/contacts",
      "query": {"limit": "{page_size}", "properties": "{properties}", "archived": "false"},
      "page_size": {"default": 100, "max": 100},
      "pagination": {"style": "cursor", "next": "paging.next.after", "param": "after", "in": "query"},
      "records": "results"
    },
    "search": {
      "method": "POST", "path": "/crm/v3/objects/contacts/search",
      "body": {
        "filterGroups": [
          {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "{since}"}]},
          {"filters": [{"propertyName": "lastmodifieddate", "operator": "EQ", "value": "{since}"},
                       {"propertyName": "hs_object_id", "operator": "GT", "value": "{since_id}"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": "{properties}",
        "limit": "{page_size}"
      },
      "page_size": {"default": 200, "max": 200},
      "pagination": {"style": "cursor", "next": "paging.next.after", "param": "after", "in": "body"},
      "records": "results", "total": "total",
      "keyset": true, "since_format": "epoch_ms", "result_cap": 10000,
      "rate_limit": {"requests": 5, "per_seconds": 1}
    },
    "archived": {
      "method": "GET", "path": "/crm/v3/objects/contacts",
      "query": {"limit": "{page_size}", "properties": "{properties}", "archived": "true"},
      "page_size": {"default": 100, "max": 100},
      "pagination": {"style": "cursor", "next": "paging.next.after", "param": "after", "in": "query"},
      "records": "results"
    }
  },
  "modes": {"full": ["list", "archived"], "incremental": ["search", "archived"]},
  "record": {"id": "id", "updated_at": "properties.lastmodifieddate", "updated_at_format": "iso8601",
             "archived": "archived"},
  "properties": ["email", "firstname", "lastname", "company", "phone", "lastmodifieddate"],
  "field_map": {"email": "properties.email", "first_name": "properties.firstname",
                "last_name": "properties.lastname", "company": "properties.company",
                "phone": "properties.phone", "properties": "properties"},
  "incremental": {"lookback_seconds": 60, "initial_id": "0"},
  "write": {
    "method": "POST", "path": "/crm/v3/objects/contacts/batch/upsert", "max_batch": 100,
    "body": {"inputs": "{records}"},
    "key": "{email}", "key_field": "id",
    "record": {"idProperty": "email",
               "properties": {"email": "{email}", "firstname": "{first_name}", "lastname": "{last_name}",
                              "company": "{company}", "phone": "{phone}"}},
    "result": {"style": "errors_by_key", "results": "results", "errors": "errors",
               "key": "context.ids[0]", "result_key": "properties.email", "id": "id", "message": "message"}
  },
  "rate_limit": {
    "windows": [{"requests": 100, "per_seconds": 10}],
    "headers": {"retry_after": "retry-after", "limit": "x-hubspot-ratelimit-max",
                "remaining": "x-hubspot-ratelimit-remaining",
                "interval_ms": "x-hubspot-ratelimit-interval-milliseconds",
                "daily_remaining": "x-hubspot-ratelimit-daily-remaining"}
  },
  "errors": {"message": "message", "code": ["category", "errorType"],
             "rules": [{"status": 401, "class": "auth"}, {"status": 429, "class": "rate_limited"}]}
}
$json$),
('salesforce', $json$
{
  "description": "Salesforce REST API (v60.0) contacts",
  "auth": {"style": "bearer", "credential": ["access_token", "token"]},
  "oauth": {
    "token_url": "/services/oauth2/token",
    "params": {"grant_type": "refresh_token", "refresh_token": "{refresh_token}",
               "client_id": "{client_id}", "client_secret": "{client_secret}"},
    "access_token": "access_token"
  },
  "requests": {
    "query": {
      "method": "GET", "path": "/services/data/v60.0/query",
      "query": {"q": "SELECT {properties} FROM Contact WHERE SystemModstamp > {since} OR (SystemModstamp = {since} AND Id > '{since_id}') ORDER BY SystemModstamp, Id"},
      "headers": {"Sforce-Query-Options": "batchSize={page_size}"},
      "page_size": {"default": 2000, "max": 2000},
      "pagination": {"style": "next_url", "next": "nextRecordsUrl", "done": "done"},
      "records": "records", "total": "totalSize",
      "keyset": true, "since_format": "iso8601"
    }
  },
  "modes": {"full": ["query"]},
  "record": {"id": "Id", "updated_at": "SystemModstamp", "updated_at_format": "iso8601",
             "archived": "IsDeleted"},
  "properties": ["Id", "Email", "FirstName", "LastName", "Phone", "Account.Name", "SystemModstamp", "IsDeleted"],
  "field_map": {"email": "Email", "first_name": "FirstName", "last_name": "LastName",
                "company": "Account.Name", "phone": "Phone", "properties": "$"},
  "incremental": {"lookback_seconds": 60, "initial_id": ""},
  "write": {
    "method": "PATCH", "path": "/services/data/v60.0/composite/sobjects/Contact/{external_id_field}",
    "max_batch": 200,
    "body": {"allOrNone": false, "records": "{records}"},
    "key": "{external_id}", "key_field": "{external_id_field}",
    "record": {"attributes": {"type": "Contact"}, "Email": "{email}", "FirstName": "{first_name}",
               "LastName": "{last_name}", "Phone": "{phone}"},
    "result": {"style": "in_order", "success": "success", "id": "id", "message": "errors[0].message"}
  },
  "rate_limit": {"windows": [], "headers": {"usage": "sforce-limit-info", "retry_after": "retry-after"}},
  "errors": {"message": "[0].message", "code": "[0].errorCode",
             "rules": [{"status": 401, "class": "auth"},
                       {"status": 403, "code": "REQUEST_LIMIT_EXCEEDED", "class": "quota"},
                       {"status": 400, "code": "INVALID_QUERY_LOCATOR", "class": "restart"}]}
}
$json$),
('pipedrive', $json$
{
  "description": "Pipedrive persons (API v2)",
  "auth": {"style": "header", "name": "x-api-token", "credential": ["api_token", "token"]},
  "requests": {
    "list": {
      "method": "GET", "path": "/api/v2/persons",
      "query": {"limit": "{page_size}", "sort_by": "id", "sort_direction": "asc"},
      "page_size": {"default": 100, "max": 500},
      "pagination": {"style": "cursor", "next": "additional_data.next_cursor", "param": "cursor", "in": "query"},
      "records": "data"
    },
    "updated": {
      "method": "GET", "path": "/api/v2/persons",
      "query": {"limit": "{page_size}", "updated_since": "{since}", "sort_by": "update_time", "sort_direction": "asc"},
      "page_size": {"default": 100, "max": 500},
      "pagination": {"style": "cursor", "next": "additional_data.next_cursor", "param": "cursor", "in": "query"},
      "records": "data",
      "keyset": true, "since_format": "iso8601_seconds"
    }
  },
  "modes": {"full": ["list"], "incremental": ["updated"]},
  "record": {"id": "id", "updated_at": "update_time", "updated_at_format": "iso8601", "archived": "is_deleted"},
  "field_map": {"email": "emails[0].value", "first_name": "first_name", "last_name": "last_name",
                "phone": "phones[0].value", "properties": "custom_fields"},
  "incremental": {"lookback_seconds": 2},
  "write": {
    "method": "POST", "path": "/api/v2/persons", "max_batch": 1,
    "update_method": "PATCH", "update_path": "/api/v2/persons/{external_id}",
    "record": {"name": "{first_name} {last_name}",
               "emails": [{"value": "{email}", "primary": true}],
               "phones": [{"value": "{phone}", "primary": true}]},
    "result": {"style": "single", "success": "success", "id": "data.id", "message": "error"}
  },
  "rate_limit": {
    "windows": [{"requests": 20, "per_seconds": 2}],
    "headers": {"retry_after": "retry-after", "limit": "x-ratelimit-limit",
                "remaining": "x-ratelimit-remaining", "reset": "x-ratelimit-reset"}
  },
  "errors": {"message": "error", "code": ["code", "errorCode"],
             "rules": [{"status": 401, "class": "auth"}, {"status": 429, "class": "rate_limited"}]}
}
$json$);

-- Salesforce's incremental request is its full-import query sent to
-- queryAll, which also returns deleted rows (IsDeleted).  The spec is
-- completed here so the two cannot drift apart; the validation trigger
-- checks the result.
UPDATE synchub.providers
   SET spec = jsonb_set(jsonb_set(spec, '{requests,query_all}',
                                  jsonb_set(spec #> '{requests,query}', '{path}', '"/services/data/v60.0/queryAll"')),
                        '{modes,incremental}', '["query_all"]')
 WHERE name = 'salesforce';
