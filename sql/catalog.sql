-- Every object of the extension is documented and nothing is open to PUBLIC.
\i test/regress_setup.sql

-- Objects without a COMMENT (functions, tables, views, sequences, types).
SELECT 'function ' || p.oid::regprocedure AS undocumented
  FROM pg_proc p
 WHERE p.pronamespace = 'synchub'::regnamespace
   AND obj_description(p.oid, 'pg_proc') IS NULL
UNION ALL
SELECT c.relkind::text || ' ' || c.oid::regclass
  FROM pg_class c
 WHERE c.relnamespace = 'synchub'::regnamespace
   AND c.relkind IN ('r', 'v', 'm', 'p')
   AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'type ' || t.oid::regtype
  FROM pg_type t
 WHERE t.typnamespace = 'synchub'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A'
   AND obj_description(t.oid, 'pg_type') IS NULL
ORDER BY 1;

-- Grants to PUBLIC on anything in the schema.
SELECT c.oid::regclass AS public_table
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.relnamespace = 'synchub'::regnamespace AND a.grantee = 0;
SELECT p.oid::regprocedure AS public_function
  FROM pg_proc p
 WHERE p.pronamespace = 'synchub'::regnamespace
   AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0));

-- Every function is SECURITY INVOKER unless listed here on purpose.
SELECT p.oid::regprocedure AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'synchub'::regnamespace AND p.prosecdef
 ORDER BY 1;

-- Every table that holds user data is kept by pg_dump.
SELECT c.oid::regclass AS not_dumped
  FROM pg_class c
 WHERE c.relnamespace = 'synchub'::regnamespace AND c.relkind IN ('r', 'p', 'S')
   AND c.oid <> ALL (SELECT unnest(e.extconfig) FROM pg_extension e WHERE e.extname = 'synchub')
 ORDER BY 1;
