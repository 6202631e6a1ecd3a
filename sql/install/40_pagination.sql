-------------------------------------------------------------------------------
-- Keyset pagination (docs/pagination.md)
--
-- paginate() is written in C (src/pagination.c); it runs as the caller, so
-- privileges and row-level security apply.  Cursors are signed with the
-- 'cursor_key' row of synchub.secrets, read with the extension owner's
-- rights.
-------------------------------------------------------------------------------

CREATE FUNCTION synchub.paginate(rel regclass, page_size integer DEFAULT 100,
                                 cursor text DEFAULT NULL, order_by text DEFAULT NULL,
                                 filter jsonb DEFAULT NULL)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'synchub_paginate'
    LANGUAGE C STABLE SECURITY INVOKER;
REVOKE ALL ON FUNCTION synchub.paginate(regclass, integer, text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub.paginate(regclass, integer, text, text, jsonb) IS
    'one page of a table or view in keyset order: {"data": [...], "next_cursor", "prev_cursor", "has_more"}';

CREATE FUNCTION synchub.paginate_explain(rel regclass, page_size integer DEFAULT 100,
                                         cursor text DEFAULT NULL, order_by text DEFAULT NULL,
                                         filter jsonb DEFAULT NULL)
    RETURNS text[]
    AS 'MODULE_PATHNAME', 'synchub_paginate_explain'
    LANGUAGE C VOLATILE SECURITY INVOKER;
REVOKE ALL ON FUNCTION synchub.paginate_explain(regclass, integer, text, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION synchub.paginate_explain(regclass, integer, text, text, jsonb) IS
    'EXPLAIN (COSTS OFF) of the query paginate() runs for the same arguments, one line per element';
