-- Included by every regression test (\i test/regress_setup.sql).
-- err(sql) runs a statement and returns "SQLSTATE: message | detail | hint",
-- so the expected files pin the error code as well as the text.
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.err(q text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || coalesce(' | ' || nullif(det, ''), '')
              || coalesce(' | HINT: ' || nullif(hnt, ''), '');
END
$$;
