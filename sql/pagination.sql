-- Keyset pagination: walking every page forwards and backwards returns what
-- ORDER BY returns, for every kind of order, key type and page size.
\i test/regress_setup.sql
CREATE SCHEMA pagination_test;
SET search_path = pagination_test, public;

-- walk(rel, page_size, order_by, filter, expected query) fetches every page
-- forwards, then every page backwards from the last, checking that both
-- walks return exactly the rows of the expected query, that only the last
-- page is short, and what has_more and the cursors say on each page.
CREATE FUNCTION pg_temp.walk(rel regclass, page_size int, order_by text, filter jsonb, expected text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    want jsonb;
    page jsonb;
    fwd jsonb := '[]';
    bwd jsonb;
    pages int := 0;
    back_pages int := 1;
    cur text;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(x)), ''[]'') FROM (%s) x', expected) INTO want;
    page := synchub.paginate(rel, page_size, NULL, order_by, filter);
    IF page->'prev_cursor' <> 'null' THEN
        RETURN 'first page has a prev_cursor';
    END IF;
    LOOP
        pages := pages + 1;
        fwd := fwd || (page->'data');
        IF (page->>'has_more')::boolean <> (page->>'next_cursor' IS NOT NULL) THEN
            RETURN format('page %s: has_more disagrees with next_cursor', pages);
        END IF;
        IF page->>'next_cursor' IS NOT NULL AND jsonb_array_length(page->'data') <> page_size THEN
            RETURN format('page %s: short page before the last', pages);
        END IF;
        IF pages > 1 AND page->>'prev_cursor' IS NULL THEN
            RETURN format('page %s: no prev_cursor', pages);
        END IF;
        EXIT WHEN page->>'next_cursor' IS NULL;
        page := synchub.paginate(rel, page_size, page->>'next_cursor', order_by, filter);
    END LOOP;
    IF fwd <> want THEN
        RETURN format('forwards: %s rows, expected %s: %s', jsonb_array_length(fwd), jsonb_array_length(want), fwd);
    END IF;
    bwd := page->'data';
    cur := page->>'prev_cursor';
    WHILE cur IS NOT NULL LOOP
        page := synchub.paginate(rel, page_size, cur, order_by, filter);
        back_pages := back_pages + 1;
        IF jsonb_array_length(page->'data') <> page_size THEN
            RETURN format('backwards page %s: %s rows', back_pages, jsonb_array_length(page->'data'));
        END IF;
        IF (page->>'has_more')::boolean <> (page->>'prev_cursor' IS NOT NULL) THEN
            RETURN format('backwards page %s: has_more disagrees with prev_cursor', back_pages);
        END IF;
        -- next_cursor of a backward page leads to the page after it
        IF synchub.paginate(rel, 1, page->>'next_cursor', order_by, filter)->'data'->0 <> bwd->0 THEN
            RETURN format('backwards page %s: next_cursor does not lead back', back_pages);
        END IF;
        bwd := (page->'data') || bwd;
        cur := page->>'prev_cursor';
    END LOOP;
    IF bwd <> want OR back_pages <> pages THEN
        RETURN format('backwards: %s rows in %s pages, expected %s rows in %s pages',
                      jsonb_array_length(bwd), back_pages, jsonb_array_length(want), pages);
    END IF;
    RETURN format('ok: %s rows, %s pages', jsonb_array_length(want), pages);
END
$$;

-- 40 rows with duplicates and NULLs in every nullable column.
CREATE TABLE people (
    id    integer PRIMARY KEY,
    uid   uuid NOT NULL UNIQUE,
    grp   integer NOT NULL,
    name  text,
    score numeric,
    seen  timestamptz
);
INSERT INTO people
SELECT g,
       md5(g::text)::uuid,
       g % 4,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || (g * 7 % 6) END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE round((g * 13 % 9) / 4.0, 2) END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00+00' + (g * 11 % 8) * interval '1 day' END
  FROM generate_series(1, 40) g;

-- the shape of a page (cursors are random per database: only their presence)
SELECT jsonb_array_length(p->'data') AS n, p->'data'->0 AS first_row, p->'has_more' AS has_more,
       p->>'next_cursor' ~ '^[A-Za-z0-9_-]+$' AS next_url_safe, p->'prev_cursor' AS prev
  FROM synchub.paginate('people', 2) p;
SELECT length(synchub.paginate('people', 2, order_by => 'seen DESC')->>'next_cursor') < 80 AS compact;

-- default order: the primary key; page sizes 1, 3, 7 and larger than the table
SELECT pg_temp.walk('people', 1, NULL, NULL, 'SELECT * FROM people ORDER BY id');
SELECT pg_temp.walk('people', 3, NULL, NULL, 'SELECT * FROM people ORDER BY id');
SELECT pg_temp.walk('people', 7, 'id', NULL, 'SELECT * FROM people ORDER BY id');
SELECT pg_temp.walk('people', 100, NULL, NULL, 'SELECT * FROM people ORDER BY id');
SELECT pg_temp.walk('people', 40, NULL, NULL, 'SELECT * FROM people ORDER BY id');
-- descending, all NOT NULL (one row comparison)
SELECT pg_temp.walk('people', 3, 'id DESC', NULL, 'SELECT * FROM people ORDER BY id DESC');
SELECT pg_temp.walk('people', 4, 'grp DESC, id DESC', NULL, 'SELECT * FROM people ORDER BY grp DESC, id DESC');
-- mixed directions
SELECT pg_temp.walk('people', 3, 'grp DESC, id', NULL, 'SELECT * FROM people ORDER BY grp DESC, id');
SELECT pg_temp.walk('people', 3, 'grp, id DESC', NULL, 'SELECT * FROM people ORDER BY grp, id DESC');
-- text, nullable, every NULLS placement; the primary key is appended
SELECT pg_temp.walk('people', 3, 'name', NULL, 'SELECT * FROM people ORDER BY name, id');
SELECT pg_temp.walk('people', 3, 'name DESC', NULL, 'SELECT * FROM people ORDER BY name DESC, id');
SELECT pg_temp.walk('people', 3, 'name NULLS FIRST', NULL, 'SELECT * FROM people ORDER BY name NULLS FIRST, id');
SELECT pg_temp.walk('people', 3, 'name DESC NULLS LAST', NULL, 'SELECT * FROM people ORDER BY name DESC NULLS LAST, id');
SELECT pg_temp.walk('people', 1, 'name ASC NULLS LAST, id DESC', NULL, 'SELECT * FROM people ORDER BY name NULLS LAST, id DESC');
-- numeric and timestamptz keys, nullable, mixed
SELECT pg_temp.walk('people', 3, 'score DESC, name NULLS FIRST', NULL, 'SELECT * FROM people ORDER BY score DESC, name NULLS FIRST, id');
SELECT pg_temp.walk('people', 5, 'seen DESC', NULL, 'SELECT * FROM people ORDER BY seen DESC, id');
SELECT pg_temp.walk('people', 2, 'seen NULLS FIRST, score DESC NULLS LAST', NULL, 'SELECT * FROM people ORDER BY seen NULLS FIRST, score DESC NULLS LAST, id');
SELECT pg_temp.walk('people', 3, 'score, seen DESC NULLS LAST, name NULLS FIRST', NULL, 'SELECT * FROM people ORDER BY score, seen DESC NULLS LAST, name NULLS FIRST, id');
-- uuid: unique and NOT NULL, so nothing is appended
SELECT pg_temp.walk('people', 6, 'uid', NULL, 'SELECT * FROM people ORDER BY uid');
SELECT pg_temp.walk('people', 6, 'uid DESC', NULL, 'SELECT * FROM people ORDER BY uid DESC');
-- quoted identifiers and case folding
SELECT pg_temp.walk('people', 9, ' "name" Desc  Nulls  First ,ID ', NULL, 'SELECT * FROM people ORDER BY name DESC NULLS FIRST, id');
-- filters: equality, IS NULL, several columns, values that would be SQL
SELECT pg_temp.walk('people', 2, 'name', '{"grp": 2}', 'SELECT * FROM people WHERE grp = 2 ORDER BY name, id');
SELECT pg_temp.walk('people', 2, 'seen DESC', '{"name": null}', 'SELECT * FROM people WHERE name IS NULL ORDER BY seen DESC, id');
SELECT pg_temp.walk('people', 2, NULL, '{"grp": 1, "name": "n1"}', 'SELECT * FROM people WHERE grp = 1 AND name = ''n1'' ORDER BY id');
SELECT pg_temp.walk('people', 2, NULL, '{"score": 1.5}', 'SELECT * FROM people WHERE score = 1.5 ORDER BY id');
SELECT pg_temp.walk('people', 2, NULL, '{"name": "n1'' OR ''1''=''1"}', 'SELECT * FROM people WHERE false');
SELECT pg_temp.walk('people', 2, NULL, '{}', 'SELECT * FROM people ORDER BY id');

-- a table whose key is composite and whose first key column is not first
CREATE TABLE events (tenant int NOT NULL, seq bigint NOT NULL, kind text, PRIMARY KEY (tenant, seq));
INSERT INTO events SELECT g % 3, g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'k' || (g % 5) END FROM generate_series(1, 25) g;
SELECT pg_temp.walk('events', 4, 'kind DESC', NULL, 'SELECT * FROM events ORDER BY kind DESC, tenant, seq');
SELECT pg_temp.walk('events', 4, 'seq DESC, tenant', NULL, 'SELECT * FROM events ORDER BY seq DESC, tenant');

-- empty tables
CREATE TABLE empty (id int PRIMARY KEY, v text);
SELECT synchub.paginate('empty');
SELECT pg_temp.walk('empty', 1, 'v DESC', NULL, 'SELECT * FROM empty');

-- views (order_by required, trusted as unique) and materialized views
CREATE VIEW people_v AS SELECT id, name FROM people WHERE grp <> 0;
SELECT pg_temp.walk('people_v', 4, 'name DESC, id', NULL, 'SELECT * FROM people_v ORDER BY name DESC, id');
CREATE MATERIALIZED VIEW people_m AS SELECT id, score FROM people;
CREATE UNIQUE INDEX ON people_m (id);
SELECT pg_temp.walk('people_m', 4, 'score', NULL, 'SELECT * FROM people_m ORDER BY score, id');
-- partitioned tables
CREATE TABLE parts (id int PRIMARY KEY, v int) PARTITION BY RANGE (id);
CREATE TABLE parts_1 PARTITION OF parts FOR VALUES FROM (0) TO (10);
CREATE TABLE parts_2 PARTITION OF parts FOR VALUES FROM (10) TO (100);
INSERT INTO parts SELECT g, g % 3 FROM generate_series(1, 20) g;
SELECT pg_temp.walk('parts', 3, 'v DESC', NULL, 'SELECT * FROM parts ORDER BY v DESC, id');

-- a backward page whose rows were all deleted leads forwards again
CREATE TABLE shrink (id int PRIMARY KEY);
INSERT INTO shrink SELECT generate_series(1, 6);
SELECT synchub.paginate('shrink', 3)->>'next_cursor' AS c1 \gset
SELECT synchub.paginate('shrink', 3, :'c1')->>'prev_cursor' AS back \gset
DELETE FROM shrink WHERE id <= 3;
SELECT p->'data' AS data, p->'has_more' AS has_more, p->'prev_cursor' AS prev
  FROM synchub.paginate('shrink', 3, :'back') p;
SELECT synchub.paginate('shrink', 3, synchub.paginate('shrink', 3, :'back')->>'next_cursor')->'data' AS data;
-- a page whose following rows were all deleted
DELETE FROM shrink WHERE id > 3;
SELECT p->'data' AS data, p->'has_more' AS has_more, p->'next_cursor' AS next
  FROM synchub.paginate('shrink', 3, :'c1') p;

-- kept plans follow DDL: a new column shows up, a re-created table is
-- paginated afresh and its predecessor's cursors are refused
CREATE TABLE ddl (id int PRIMARY KEY, v text);
INSERT INTO ddl SELECT g, 'v' || g FROM generate_series(1, 4) g;
SELECT synchub.paginate('ddl', 2)->'data' AS before_alter;
SELECT synchub.paginate('ddl', 2)->>'next_cursor' AS c_ddl \gset
ALTER TABLE ddl ADD COLUMN w int DEFAULT 7;
SELECT synchub.paginate('ddl', 2)->'data' AS after_alter;
SELECT synchub.paginate('ddl', 2, :'c_ddl')->'data' AS cursor_survives_alter;
DROP TABLE ddl;
CREATE TABLE ddl (id int PRIMARY KEY, v text);
INSERT INTO ddl VALUES (9, 'new');
SELECT synchub.paginate('ddl', 2)->'data' AS recreated;
SELECT pg_temp.err($$SELECT synchub.paginate('ddl', 2, '$$ || :'c_ddl' || $$')$$);

-- the generated query is served by a matching index
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE INDEX people_seen_idx ON people (seen DESC, id);
SELECT synchub.paginate('people', 10, order_by => 'seen DESC')->>'next_cursor' AS c \gset
SELECT unnest(synchub.paginate_explain('people', 5, :'c', 'seen DESC'));
-- backwards, the same index is scanned the other way
SELECT synchub.paginate('people', 5, :'c', 'seen DESC')->>'prev_cursor' AS c \gset
SELECT unnest(synchub.paginate_explain('people', 5, :'c', 'seen DESC'));
CREATE INDEX people_grp_idx ON people (grp, id);
SELECT synchub.paginate('people', 5, order_by => 'grp DESC, id DESC')->>'next_cursor' AS c \gset
SELECT unnest(synchub.paginate_explain('people', 5, :'c', 'grp DESC, id DESC'));
SELECT synchub.paginate('people', 5, order_by => 'id', filter => '{"grp": 3}')->>'next_cursor' AS c \gset
SELECT unnest(synchub.paginate_explain('people', 5, :'c', 'id', '{"grp": 3}'));
RESET enable_seqscan;
RESET enable_bitmapscan;
