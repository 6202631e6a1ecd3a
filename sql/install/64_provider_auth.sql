-------------------------------------------------------------------------------
-- Provider authentication for the worker: OAuth refresh, and the C entry
-- points (src/providers.c) that put real credentials into requests.  The
-- functions here that return secrets refuse every role but the extension
-- owner.
-------------------------------------------------------------------------------

-- Where and with which form parameters an integration refreshes its token
-- (templates; src/providers.c fills them from the credentials).
CREATE FUNCTION synchub._oauth_plan(integration_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    i synchub.integrations;
    o jsonb;
BEGIN
    i := synchub._integration_row(integration_id);
    SELECT p.spec->'oauth' INTO o FROM synchub.providers p WHERE p.name = i.provider;
    IF o IS NULL THEN
        RAISE EXCEPTION 'provider "%" has no OAuth refresh', i.provider
            USING ERRCODE = 'feature_not_supported';
    END IF;
    RETURN jsonb_build_object(
        'url', CASE WHEN o->>'token_url' ~ '^/' THEN substring(i.base_url FROM '^https?://[^/]+') || (o->>'token_url')
                    ELSE o->>'token_url' END,
        'params', o->'params');
END
$$;
REVOKE ALL ON FUNCTION synchub._oauth_plan(bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._oauth_plan(bigint) IS 'internal: token URL and form parameter templates of an integration''s OAuth refresh';

-- The credentials after a successful refresh: the new access token, and the
-- new refresh token and expiry when the response has them; NULL if the
-- response has no access token.
CREATE FUNCTION synchub._oauth_merge(integration_id bigint, credentials jsonb, response jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o       jsonb;
    access  text;
    refresh text;
    expires text;
BEGIN
    SELECT p.spec->'oauth' INTO o
      FROM synchub.integrations i JOIN synchub.providers p ON p.name = i.provider
     WHERE i.id = integration_id;
    IF o IS NULL OR jsonb_typeof(response) <> 'object' THEN
        RETURN NULL;
    END IF;
    access := response #>> synchub._json_path(o->>'access_token');
    IF access IS NULL OR access = '' THEN
        RETURN NULL;
    END IF;
    IF o ? 'refresh_token' THEN
        refresh := response #>> synchub._json_path(o->>'refresh_token');
    END IF;
    IF o ? 'expires_in' THEN
        expires := response #>> synchub._json_path(o->>'expires_in');
    END IF;
    RETURN credentials || jsonb_build_object('access_token', access)
        || CASE WHEN refresh <> '' THEN jsonb_build_object('refresh_token', refresh) ELSE '{}' END
        || CASE WHEN expires ~ '^[0-9]{1,9}$'
                THEN jsonb_build_object('expires_at', synchub._ts_text(now() + make_interval(secs => expires::integer)))
                ELSE '{}' END;
END
$$;
REVOKE ALL ON FUNCTION synchub._oauth_merge(bigint, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._oauth_merge(bigint, jsonb, jsonb) IS 'internal: credentials updated with the tokens of a refresh response';

-------------------------------------------------------------------------------
-- C entry points that return secrets: extension owner only
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._provider_request(integration_id bigint, mode text, checkpoint jsonb DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_provider_request'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION synchub._provider_request(bigint, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_request(bigint, text, jsonb) IS
    'internal, extension owner only: the next request of a sync run with the real credential';

CREATE FUNCTION synchub._provider_refresh_request(integration_id bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_provider_refresh_request'
    LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION synchub._provider_refresh_request(bigint) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_refresh_request(bigint) IS
    'internal, extension owner only: the OAuth refresh request of an integration, form body included';

CREATE FUNCTION synchub._provider_refresh_apply(integration_id bigint, response jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'synchub_provider_refresh_apply'
    LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION synchub._provider_refresh_apply(bigint, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub._provider_refresh_apply(bigint, jsonb) IS
    'internal, extension owner only: store the tokens of a successful refresh response; false if it has no access token';
