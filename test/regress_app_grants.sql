-- Included by regression tests that need application roles
-- (\i test/regress_app_grants.sql): pg_temp.grant_app(role) gives a role the
-- grants docs/connectors.md lists for managing its own integrations and
-- enqueuing jobs.
CREATE FUNCTION pg_temp.grant_app(r text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA synchub TO %I', r);
    EXECUTE format('GRANT EXECUTE ON FUNCTION
        synchub.create_integration(text, text, text, jsonb, jsonb),
        synchub.set_credentials(text, jsonb),
        synchub.sync(text, text),
        synchub.schedule(text, interval, text),
        synchub.unschedule(text, text),
        synchub._credentials_store(bigint, jsonb),
        synchub._options_check(text, jsonb),
        synchub._options_fail(text, text, text),
        synchub._json_path_valid(text),
        synchub._rate_windows_valid(jsonb),
        synchub._integration_id(text),
        synchub._check_mode(text, bigint),
        synchub._enqueue_sync(bigint, text),
        synchub.enqueue(text, jsonb, bigint, text, integer, timestamptz, integer, text),
        synchub._notify_job(synchub.job_queue), synchub._wake_worker(text) TO %I', r);
    EXECUTE format('GRANT SELECT ON synchub.providers TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON synchub.integrations TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON synchub.schedules, synchub.contacts TO %I', r);
    EXECUTE format('GRANT SELECT ON synchub.sync_state TO %I', r);
    EXECUTE format('GRANT SELECT, INSERT ON synchub.job_queue TO %I', r);
    EXECUTE format('GRANT SELECT ON synchub.job_history, synchub.jobs TO %I', r);
    EXECUTE format('GRANT USAGE ON SEQUENCE synchub.job_id_seq TO %I', r);
END
$$;
