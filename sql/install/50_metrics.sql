-------------------------------------------------------------------------------
-- Metrics: campaign funnels, quantile and distinct sketches, hourly rollups,
-- API latency per integration, queue health.  docs/metrics.md is the guide.
-------------------------------------------------------------------------------

-------------------------------------------------------------------------------
-- synchub.sketch: mergeable quantile sketch (DDSketch), relative error <= 1%
-------------------------------------------------------------------------------

CREATE TYPE synchub.sketch;

CREATE FUNCTION synchub.sketch_in(cstring) RETURNS synchub.sketch
    AS 'MODULE_PATHNAME', 'synchub_sketch_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub.sketch_out(synchub.sketch) RETURNS cstring
    AS 'MODULE_PATHNAME', 'synchub_sketch_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub.sketch_recv(internal) RETURNS synchub.sketch
    AS 'MODULE_PATHNAME', 'synchub_sketch_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub.sketch_send(synchub.sketch) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_sketch_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE synchub.sketch (
    INPUT = synchub.sketch_in,
    OUTPUT = synchub.sketch_out,
    RECEIVE = synchub.sketch_recv,
    SEND = synchub.sketch_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);

CREATE FUNCTION synchub.quantile(sketch synchub.sketch, q double precision) RETURNS double precision
    AS 'MODULE_PATHNAME', 'synchub_sketch_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub.sketch_count(sketch synchub.sketch) RETURNS bigint
    AS 'MODULE_PATHNAME', 'synchub_sketch_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub.sketch_union(a synchub.sketch, b synchub.sketch) RETURNS synchub.sketch
    AS 'MODULE_PATHNAME', 'synchub_sketch_union' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION synchub._sketch_add(internal, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_sketch_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._sketch_merge_add(internal, synchub.sketch) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_sketch_merge_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._sketch_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_sketch_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._sketch_final(internal) RETURNS synchub.sketch
    AS 'MODULE_PATHNAME', 'synchub_sketch_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._sketch_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_sketch_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub._sketch_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_sketch_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE synchub.sketch_agg(double precision) (
    SFUNC = synchub._sketch_add,
    STYPE = internal,
    SSPACE = 1024,
    FINALFUNC = synchub._sketch_final,
    COMBINEFUNC = synchub._sketch_combine,
    SERIALFUNC = synchub._sketch_serialize,
    DESERIALFUNC = synchub._sketch_deserialize,
    PARALLEL = SAFE
);

CREATE AGGREGATE synchub.sketch_merge(synchub.sketch) (
    SFUNC = synchub._sketch_merge_add,
    STYPE = internal,
    SSPACE = 1024,
    FINALFUNC = synchub._sketch_final,
    COMBINEFUNC = synchub._sketch_combine,
    SERIALFUNC = synchub._sketch_serialize,
    DESERIALFUNC = synchub._sketch_deserialize,
    PARALLEL = SAFE
);

REVOKE ALL ON TYPE synchub.sketch FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_in(cstring) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_out(synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_recv(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_send(synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.quantile(synchub.sketch, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_count(synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_union(synchub.sketch, synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_add(internal, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_merge_add(internal, synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_combine(internal, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_serialize(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._sketch_deserialize(bytea, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_agg(double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.sketch_merge(synchub.sketch) FROM PUBLIC;

COMMENT ON TYPE synchub.sketch IS 'mergeable quantile sketch (DDSketch): relative error at most 1%, at most 2048 buckets per sign';
COMMENT ON FUNCTION synchub.sketch_in(cstring) IS 'text input of synchub.sketch';
COMMENT ON FUNCTION synchub.sketch_out(synchub.sketch) IS 'text output of synchub.sketch';
COMMENT ON FUNCTION synchub.sketch_recv(internal) IS 'binary input of synchub.sketch';
COMMENT ON FUNCTION synchub.sketch_send(synchub.sketch) IS 'binary output of synchub.sketch';
COMMENT ON FUNCTION synchub.quantile(synchub.sketch, double precision) IS
    'the q-quantile (rank of percentile_disc) within 1% relative error; NULL for an empty sketch';
COMMENT ON FUNCTION synchub.sketch_count(synchub.sketch) IS 'number of values in the sketch';
COMMENT ON FUNCTION synchub.sketch_union(synchub.sketch, synchub.sketch) IS 'merge two sketches; a NULL argument is ignored';
COMMENT ON FUNCTION synchub._sketch_add(internal, double precision) IS 'internal: sketch_agg transition';
COMMENT ON FUNCTION synchub._sketch_merge_add(internal, synchub.sketch) IS 'internal: sketch_merge transition';
COMMENT ON FUNCTION synchub._sketch_combine(internal, internal) IS 'internal: sketch aggregate combine';
COMMENT ON FUNCTION synchub._sketch_final(internal) IS 'internal: sketch aggregate final';
COMMENT ON FUNCTION synchub._sketch_serialize(internal) IS 'internal: sketch aggregate serialisation';
COMMENT ON FUNCTION synchub._sketch_deserialize(bytea, internal) IS 'internal: sketch aggregate deserialisation';
COMMENT ON AGGREGATE synchub.sketch_agg(double precision) IS
    'quantile sketch of the non-NULL values; NaN and infinities are rejected';
COMMENT ON AGGREGATE synchub.sketch_merge(synchub.sketch) IS 'merge of the non-NULL sketches';

-------------------------------------------------------------------------------
-- Distinct sketch for rollups: exact up to 2048 values, HyperLogLog above
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._hll_add(internal, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_hll_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._hll_union_add(internal, bytea) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_hll_union_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._hll_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_hll_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._hll_final(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_hll_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub._hll_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_hll_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub._hll_union(a bytea, b bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_hll_union' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._hll_count(sketch bytea) RETURNS bigint
    AS 'MODULE_PATHNAME', 'synchub_hll_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE synchub._hll_agg(bigint) (
    SFUNC = synchub._hll_add,
    STYPE = internal,
    SSPACE = 512,
    FINALFUNC = synchub._hll_final,
    COMBINEFUNC = synchub._hll_combine,
    SERIALFUNC = synchub._hll_final,
    DESERIALFUNC = synchub._hll_deserialize,
    PARALLEL = SAFE
);

CREATE AGGREGATE synchub._hll_union_agg(bytea) (
    SFUNC = synchub._hll_union_add,
    STYPE = internal,
    SSPACE = 512,
    FINALFUNC = synchub._hll_final,
    COMBINEFUNC = synchub._hll_combine,
    SERIALFUNC = synchub._hll_final,
    DESERIALFUNC = synchub._hll_deserialize,
    PARALLEL = SAFE
);

REVOKE ALL ON FUNCTION synchub._hll_add(internal, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_union_add(internal, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_combine(internal, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_deserialize(bytea, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_union(bytea, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_count(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_agg(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._hll_union_agg(bytea) FROM PUBLIC;

COMMENT ON FUNCTION synchub._hll_add(internal, bigint) IS 'internal: _hll_agg transition';
COMMENT ON FUNCTION synchub._hll_union_add(internal, bytea) IS 'internal: _hll_union_agg transition';
COMMENT ON FUNCTION synchub._hll_combine(internal, internal) IS 'internal: distinct sketch combine';
COMMENT ON FUNCTION synchub._hll_final(internal) IS 'internal: distinct sketch final and serialisation';
COMMENT ON FUNCTION synchub._hll_deserialize(bytea, internal) IS 'internal: distinct sketch deserialisation';
COMMENT ON FUNCTION synchub._hll_union(bytea, bytea) IS 'internal: union of two distinct sketches; a NULL argument is ignored';
COMMENT ON FUNCTION synchub._hll_count(bytea) IS 'internal: distinct values in a distinct sketch (exact up to 2048)';
COMMENT ON AGGREGATE synchub._hll_agg(bigint) IS 'internal: distinct sketch of the non-NULL ids';
COMMENT ON AGGREGATE synchub._hll_union_agg(bytea) IS 'internal: union of distinct sketches';

-------------------------------------------------------------------------------
-- Campaign funnel
-------------------------------------------------------------------------------

CREATE FUNCTION synchub._funnel_add(internal, text, bigint) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_funnel_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._funnel_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_funnel_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._funnel_final(internal) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_funnel_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._funnel_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'synchub_funnel_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION synchub._funnel_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_funnel_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE synchub.campaign_metrics(kind text, lead_id bigint) (
    SFUNC = synchub._funnel_add,
    STYPE = internal,
    SSPACE = 4096,
    FINALFUNC = synchub._funnel_final,
    COMBINEFUNC = synchub._funnel_combine,
    SERIALFUNC = synchub._funnel_serialize,
    DESERIALFUNC = synchub._funnel_deserialize,
    PARALLEL = SAFE
);

REVOKE ALL ON FUNCTION synchub._funnel_add(internal, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._funnel_combine(internal, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._funnel_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._funnel_serialize(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._funnel_deserialize(bytea, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub.campaign_metrics(text, bigint) FROM PUBLIC;

COMMENT ON FUNCTION synchub._funnel_add(internal, text, bigint) IS 'internal: campaign_metrics transition';
COMMENT ON FUNCTION synchub._funnel_combine(internal, internal) IS 'internal: campaign_metrics combine';
COMMENT ON FUNCTION synchub._funnel_final(internal) IS 'internal: campaign_metrics final';
COMMENT ON FUNCTION synchub._funnel_serialize(internal) IS 'internal: campaign_metrics serialisation';
COMMENT ON FUNCTION synchub._funnel_deserialize(bytea, internal) IS 'internal: campaign_metrics deserialisation';
COMMENT ON AGGREGATE synchub.campaign_metrics(text, bigint) IS
    'funnel as jsonb: events and unique leads per kind, open, click, reply and bounce rates';

-------------------------------------------------------------------------------
-- Events and hourly rollups
-------------------------------------------------------------------------------

CREATE TABLE synchub.events (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint      NOT NULL,
    lead_id     bigint      NOT NULL,
    kind        text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_kind_check
        CHECK (kind IN ('sent', 'delivered', 'opened', 'clicked', 'replied', 'bounced'))
);
REVOKE ALL ON synchub.events FROM PUBLIC;
-- Raw queries per campaign and time range.
CREATE INDEX events_campaign_at_idx ON synchub.events (campaign_id, at);
-- A lead's first send, for the response time of its opens, clicks and replies.
CREATE INDEX events_sent_idx ON synchub.events (campaign_id, lead_id, at) WHERE kind = 'sent';

CREATE TABLE synchub.campaign_rollups (
    campaign_id      bigint      NOT NULL,
    hour             timestamptz NOT NULL,
    sent             bigint      NOT NULL DEFAULT 0,
    delivered        bigint      NOT NULL DEFAULT 0,
    opened           bigint      NOT NULL DEFAULT 0,
    clicked          bigint      NOT NULL DEFAULT 0,
    replied          bigint      NOT NULL DEFAULT 0,
    bounced          bigint      NOT NULL DEFAULT 0,
    leads_sent       bytea,
    leads_delivered  bytea,
    leads_opened     bytea,
    leads_clicked    bytea,
    leads_replied    bytea,
    leads_bounced    bytea,
    response_seconds synchub.sketch,
    -- distinct leads per kind in the hour, read from the sketches above
    unique_sent      bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_sent), 0)) STORED,
    unique_delivered bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_delivered), 0)) STORED,
    unique_opened    bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_opened), 0)) STORED,
    unique_clicked   bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_clicked), 0)) STORED,
    unique_replied   bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_replied), 0)) STORED,
    unique_bounced   bigint GENERATED ALWAYS AS (coalesce(synchub._hll_count(leads_bounced), 0)) STORED,
    PRIMARY KEY (campaign_id, hour)
);
REVOKE ALL ON synchub.campaign_rollups FROM PUBLIC;

CREATE TABLE synchub.rollup_watermark (
    only_row     boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    last_seq     bigint      NOT NULL DEFAULT 0,
    refreshed_at timestamptz
);
REVOKE ALL ON synchub.rollup_watermark FROM PUBLIC;
-- The row is made by the first refresh_rollups(), not here: pg_dump keeps
-- it, and a restore must find the table empty.

SELECT pg_catalog.pg_extension_config_dump('synchub.events', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.events_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.campaign_rollups', '');
SELECT pg_catalog.pg_extension_config_dump('synchub.rollup_watermark', '');

COMMENT ON TABLE synchub.events IS 'campaign events; seq orders insertion and drives the incremental rollup';
COMMENT ON TABLE synchub.campaign_rollups IS
    'per campaign and UTC hour: events and distinct-lead sketches per kind, response time sketch';
COMMENT ON TABLE synchub.rollup_watermark IS 'the last events.seq folded into synchub.campaign_rollups';

-- Fold the events inserted since the last call into the hourly rollups.
-- The watermark row serialises concurrent calls; SHARE on the events table
-- waits for inserts in flight, so no event with a smaller seq can commit
-- after the watermark passed it.  That holds only if max(seq) is read with
-- a snapshot taken after the lock, i.e. in READ COMMITTED: a REPEATABLE
-- READ or SERIALIZABLE snapshot predates the lock, so an insert that
-- committed while the lock was awaited would be invisible here, fall
-- behind the watermark and never be folded.  Those levels are refused.
CREATE FUNCTION synchub.refresh_rollups() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    from_seq bigint;
    to_seq   bigint;
    n        bigint;
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION 'synchub.refresh_rollups() must run in a READ COMMITTED transaction'
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('The transaction isolation level is %s: its snapshot predates the lock on '
                                  'synchub.events, so events committed meanwhile would be skipped for good.',
                                  upper(current_setting('transaction_isolation'))),
                  HINT = 'Call it in its own READ COMMITTED transaction (the default level).';
    END IF;
    INSERT INTO synchub.rollup_watermark DEFAULT VALUES ON CONFLICT DO NOTHING;
    SELECT w.last_seq INTO from_seq FROM synchub.rollup_watermark w FOR UPDATE;
    LOCK TABLE synchub.events IN SHARE MODE;
    SELECT max(e.seq) INTO to_seq FROM synchub.events e;
    IF to_seq IS NULL OR to_seq <= from_seq THEN
        UPDATE synchub.rollup_watermark SET refreshed_at = now();
        RETURN 0;
    END IF;

    WITH batch AS MATERIALIZED (
        SELECT e.campaign_id, e.lead_id, e.kind, e.at FROM synchub.events e
         WHERE e.seq > from_seq AND e.seq <= to_seq),
    -- the first send of each lead that responded in this batch: index
    -- lookups for a small batch, one hash join for a large one
    first_sent AS (
        SELECT f.campaign_id, f.lead_id, min(f.at) AS at
          FROM synchub.events f
         WHERE f.kind = 'sent'
           AND (f.campaign_id, f.lead_id) IN (
                SELECT b.campaign_id, b.lead_id FROM batch b
                 WHERE b.kind IN ('opened', 'clicked', 'replied'))
         GROUP BY f.campaign_id, f.lead_id),
    hourly AS (
        SELECT e.campaign_id, date_trunc('hour', e.at, 'UTC') AS hour, count(*) AS events,
               count(*) FILTER (WHERE e.kind = 'sent') AS sent,
               count(*) FILTER (WHERE e.kind = 'delivered') AS delivered,
               count(*) FILTER (WHERE e.kind = 'opened') AS opened,
               count(*) FILTER (WHERE e.kind = 'clicked') AS clicked,
               count(*) FILTER (WHERE e.kind = 'replied') AS replied,
               count(*) FILTER (WHERE e.kind = 'bounced') AS bounced,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'sent') AS leads_sent,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'delivered') AS leads_delivered,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'opened') AS leads_opened,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'clicked') AS leads_clicked,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'replied') AS leads_replied,
               synchub._hll_agg(e.lead_id) FILTER (WHERE e.kind = 'bounced') AS leads_bounced,
               synchub.sketch_agg(extract(epoch FROM e.at - s.at)::double precision)
                   AS response_seconds
          FROM batch e
          LEFT JOIN first_sent s
                 ON s.campaign_id = e.campaign_id AND s.lead_id = e.lead_id
                AND e.kind IN ('opened', 'clicked', 'replied')
         GROUP BY 1, 2),
    merged AS (
        INSERT INTO synchub.campaign_rollups AS r
               (campaign_id, hour, sent, delivered, opened, clicked, replied, bounced,
                leads_sent, leads_delivered, leads_opened, leads_clicked, leads_replied,
                leads_bounced, response_seconds)
        SELECT b.campaign_id, b.hour, b.sent, b.delivered, b.opened, b.clicked, b.replied,
               b.bounced, b.leads_sent, b.leads_delivered, b.leads_opened, b.leads_clicked,
               b.leads_replied, b.leads_bounced, b.response_seconds
          FROM hourly b
        ON CONFLICT (campaign_id, hour) DO UPDATE SET
               sent = r.sent + excluded.sent,
               delivered = r.delivered + excluded.delivered,
               opened = r.opened + excluded.opened,
               clicked = r.clicked + excluded.clicked,
               replied = r.replied + excluded.replied,
               bounced = r.bounced + excluded.bounced,
               leads_sent = synchub._hll_union(r.leads_sent, excluded.leads_sent),
               leads_delivered = synchub._hll_union(r.leads_delivered, excluded.leads_delivered),
               leads_opened = synchub._hll_union(r.leads_opened, excluded.leads_opened),
               leads_clicked = synchub._hll_union(r.leads_clicked, excluded.leads_clicked),
               leads_replied = synchub._hll_union(r.leads_replied, excluded.leads_replied),
               leads_bounced = synchub._hll_union(r.leads_bounced, excluded.leads_bounced),
               response_seconds = synchub.sketch_union(r.response_seconds, excluded.response_seconds)
        RETURNING 1)
    SELECT coalesce(sum(h.events), 0) INTO n FROM hourly h;

    UPDATE synchub.rollup_watermark SET last_seq = to_seq, refreshed_at = now();
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION synchub.refresh_rollups() FROM PUBLIC;
COMMENT ON FUNCTION synchub.refresh_rollups() IS
    'fold events inserted since the last call into synchub.campaign_rollups; returns how many events';

CREATE FUNCTION synchub._dashboard_add(internal, timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) RETURNS internal
    AS 'MODULE_PATHNAME', 'synchub_dashboard_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION synchub._dashboard_final(internal) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_dashboard_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- Arguments: hour; events per kind; unique leads per kind; distinct
-- sketches per kind (kind order: sent, delivered, opened, clicked, replied,
-- bounced); response-time sketch.
CREATE AGGREGATE synchub._dashboard_agg(timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) (
    SFUNC = synchub._dashboard_add,
    STYPE = internal,
    FINALFUNC = synchub._dashboard_final,
    FINALFUNC_MODIFY = READ_WRITE,    -- the final function sorts the hours
    PARALLEL = SAFE
);
REVOKE ALL ON FUNCTION synchub._dashboard_add(internal, timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._dashboard_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION synchub._dashboard_agg(timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) FROM PUBLIC;
COMMENT ON FUNCTION synchub._dashboard_add(internal, timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) IS 'internal: _dashboard_agg transition';
COMMENT ON FUNCTION synchub._dashboard_final(internal) IS 'internal: _dashboard_agg final';
COMMENT ON AGGREGATE synchub._dashboard_agg(timestamptz,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bigint, bigint, bigint, bigint, bigint, bigint,
        bytea, bytea, bytea, bytea, bytea, bytea, synchub.sketch) IS
    'internal: merge rollup rows into the campaign_dashboard JSON';

CREATE FUNCTION synchub.campaign_dashboard(campaign_id bigint, since timestamptz, until timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result jsonb;
BEGIN
    IF since IS NULL OR until IS NULL OR until <= since THEN
        RAISE EXCEPTION 'until must be later than since'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The range was [%s, %s).', coalesce(since::text, 'NULL'),
                                  coalesce(until::text, 'NULL'));
    END IF;
    SELECT synchub._dashboard_agg(r.hour,
               r.sent, r.delivered, r.opened, r.clicked, r.replied, r.bounced,
               r.unique_sent, r.unique_delivered, r.unique_opened, r.unique_clicked,
               r.unique_replied, r.unique_bounced,
               r.leads_sent, r.leads_delivered, r.leads_opened, r.leads_clicked,
               r.leads_replied, r.leads_bounced, r.response_seconds)
      INTO result
      FROM synchub.campaign_rollups r
     WHERE r.campaign_id = campaign_dashboard.campaign_id
       AND r.hour >= date_trunc('hour', since, 'UTC') AND r.hour < until;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION synchub.campaign_dashboard(bigint, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION synchub.campaign_dashboard(bigint, timestamptz, timestamptz) IS
    'a campaign''s funnel over the UTC hours from since to until, from the rollups, with an hourly series';

-------------------------------------------------------------------------------
-- API latency per integration and hour (read by the integration health view)
-------------------------------------------------------------------------------

CREATE TABLE synchub.api_latency (
    integration_id bigint         NOT NULL,
    hour           timestamptz    NOT NULL,
    latency        synchub.sketch NOT NULL,
    requests       bigint         NOT NULL DEFAULT 0,
    errors         bigint         NOT NULL DEFAULT 0,
    rate_limited   bigint         NOT NULL DEFAULT 0,
    PRIMARY KEY (integration_id, hour)
);
REVOKE ALL ON synchub.api_latency FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('synchub.api_latency', '');
COMMENT ON TABLE synchub.api_latency IS
    'per integration and UTC hour: latency sketch (milliseconds), requests, errors, rate-limited responses';

CREATE FUNCTION synchub.record_api_call(integration_id bigint, latency_ms double precision,
                                        status integer) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF integration_id IS NULL THEN
        RAISE EXCEPTION 'integration_id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF latency_ms IS NULL OR latency_ms < 0 OR latency_ms >= 'infinity'::float8 THEN  -- NaN sorts above infinity
        RAISE EXCEPTION 'latency_ms must be a finite number of milliseconds, zero or more'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The value was %s.', coalesce(latency_ms::text, 'NULL'));
    END IF;
    INSERT INTO synchub.api_latency AS a (integration_id, hour, latency, requests, errors, rate_limited)
    SELECT record_api_call.integration_id, date_trunc('hour', now(), 'UTC'),
           synchub.sketch_agg(record_api_call.latency_ms), 1,
           (coalesce(status, 0) <> 429 AND (coalesce(status, 0) >= 400 OR coalesce(status, 0) < 100))::int,
           (status = 429)::int
    ON CONFLICT ON CONSTRAINT api_latency_pkey DO UPDATE SET
           latency = synchub.sketch_union(a.latency, excluded.latency),
           requests = a.requests + 1,
           errors = a.errors + excluded.errors,
           rate_limited = a.rate_limited + excluded.rate_limited;
END
$$;
REVOKE ALL ON FUNCTION synchub.record_api_call(bigint, double precision, integer) FROM PUBLIC;
COMMENT ON FUNCTION synchub.record_api_call(bigint, double precision, integer) IS
    'add one API call (latency in ms, HTTP status; 0 when no response) to the integration''s current hour';

-------------------------------------------------------------------------------
-- Queue health
-------------------------------------------------------------------------------

-- Runs with the view owner's rights: it shows table statistics and the age
-- of the oldest due pending job, never a job's content, so a monitoring
-- role granted the view sees the whole queue.
CREATE VIEW synchub.queue_health AS
    SELECT s.relname::text AS table_name,
           s.n_live_tup,
           s.n_dead_tup,
           round(s.n_dead_tup::numeric / nullif(s.n_live_tup + s.n_dead_tup, 0), 4) AS dead_fraction,
           s.last_vacuum,
           s.last_autovacuum,
           s.autovacuum_count,
           pg_catalog.pg_total_relation_size(s.relid) AS total_bytes,
           CASE WHEN s.relid = 'synchub.job_queue'::regclass THEN
               (SELECT now() - min(q.run_at) FROM synchub.job_queue q
                 WHERE q.state = 'pending' AND q.run_at <= now())
           END AS oldest_pending_age
      FROM pg_catalog.pg_stat_user_tables s
     WHERE s.relid IN ('synchub.job_queue'::regclass, 'synchub.job_history'::regclass);
REVOKE ALL ON synchub.queue_health FROM PUBLIC;
COMMENT ON VIEW synchub.queue_health IS
    'per queue table: live and dead tuples, last (auto)vacuum, size; oldest due pending job''s age';
