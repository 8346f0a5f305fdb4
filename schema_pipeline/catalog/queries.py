"""All catalog SQL of the engine: a fixed set of set-based queries (no per-object queries).

Every query returns canonical, server-rendered text (format_type, pg_get_*def, pg_get_expr) so
that two databases built differently but meaning the same thing read back identically.
"""

from __future__ import annotations


def _acl(acl: str, kind: str, owner: str) -> str:
    """SQL for a sorted text[] of 'grantee=PRIVILEGE[*]' with NULL meaning the owner default."""
    src = f"coalesce({acl}, acldefault('{kind}', {owner}))" if kind else acl
    sub = (
        "(SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM (SELECT format('%%s=%%s%%s', "
        "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, "
        "a.privilege_type, CASE WHEN a.is_grantable THEN '*' ELSE '' END) AS x "
        f"FROM aclexplode({src}) a) s)"
    )
    # Without a default, a NULL acl explodes to nothing: skip the per-row subquery (most columns).
    return sub if kind else f"(CASE WHEN {acl} IS NULL THEN '{{}}'::text[] ELSE {sub} END)"


def _not_ext(catalog: str, oid: str) -> str:
    # NOT IN over a non-null column: planned as one hashed subplan instead of a probe per row.
    return (
        f"{oid} NOT IN (SELECT e.objid FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
        "AND e.deptype = 'e')"
    )


# The managed schemas, applied by the server so that nothing out of scope is read (parameters from
# introspect._params: `include` NULL = every schema, `exclude` a possibly empty array).
SCOPE = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', %(bookkeeping)s) "
    "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%' "
    "AND (%(include)s::text[] IS NULL OR n.nspname = ANY(%(include)s::text[])) "
    "AND n.nspname <> ALL(%(exclude)s::text[])"
)

SCHEMAS = f"""
SELECT n.oid, n.nspname AS name, pg_get_userbyid(n.nspowner) AS owner,
       obj_description(n.oid, 'pg_namespace') AS comment,
       {_acl("n.nspacl", "n", "n.nspowner")} AS acl
FROM pg_namespace n
WHERE {SCOPE} AND {_not_ext("pg_namespace", "n.oid")}
"""

EXTENSIONS = """
SELECT x.oid, x.extname AS name, n.nspname AS schema, x.extversion AS version,
       obj_description(x.oid, 'pg_extension') AS comment
FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
"""

COLLATIONS = f"""
SELECT c.oid, n.nspname AS schema, c.collname AS name, c.collprovider AS provider,
       c.collcollate AS lc_collate, c.collctype AS lc_ctype, c.colliculocale AS icu_locale,
       c.collisdeterministic AS deterministic, pg_get_userbyid(c.collowner) AS owner,
       obj_description(c.oid, 'pg_collation') AS comment
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE {SCOPE} AND {_not_ext("pg_collation", "c.oid")}
"""

TYPES = f"""
SELECT t.oid, t.typarray, n.nspname AS schema, t.typname AS name, t.typtype,
       pg_get_userbyid(t.typowner) AS owner, obj_description(t.oid, 'pg_type') AS comment,
       {_acl("t.typacl", "T", "t.typowner")} AS acl,
       CASE WHEN t.typtype = 'e' THEN (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_enum e WHERE e.enumtypid = t.oid) END AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS basetype,
       t.typdefault AS default, t.typnotnull AS notnull,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> bt.typcollation
            THEN (SELECT format('%%I.%%I', cn.nspname, co.collname) FROM pg_collation co
                  JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END AS collation,
       CASE WHEN t.typtype = 'd' THEN (SELECT array_agg(format('%%s %%s', quote_ident(k.conname),
                pg_get_constraintdef(k.oid)) ORDER BY k.conname) FROM pg_constraint k WHERE k.contypid = t.oid) END
            AS constraints,
       CASE WHEN t.typtype = 'r' THEN (SELECT concat_ws(', ', 'SUBTYPE = ' || format_type(r.rngsubtype, NULL),
                CASE WHEN r.rngsubopc <> 0 AND NOT oc.opcdefault THEN 'SUBTYPE_OPCLASS = '
                     || quote_ident(oc.opcname) END,
                CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN 'COLLATION = '
                     || (SELECT quote_ident(collname) FROM pg_collation WHERE oid = r.rngcollation) END,
                CASE WHEN r.rngcanonical <> 0 THEN 'CANONICAL = ' || r.rngcanonical::regproc::text END,
                CASE WHEN r.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || r.rngsubdiff::regproc::text END)
            FROM pg_range r LEFT JOIN pg_opclass oc ON oc.oid = r.rngsubopc
            JOIN pg_type st ON st.oid = r.rngsubtype WHERE r.rngtypid = t.oid) END AS range_def
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_class rc ON rc.oid = t.typrelid
WHERE {SCOPE} AND {_not_ext("pg_type", "t.oid")}
  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND rc.relkind = 'c'))
"""

RELATIONS = f"""
SELECT c.oid, c.reltype, n.nspname AS schema, c.relname AS name, c.relkind, c.relpersistence AS persistence,
       pg_get_userbyid(c.relowner) AS owner, dsc.description AS comment,
       CASE WHEN c.relkind <> 'S' THEN {_acl("c.relacl", "r", "c.relowner")} END AS acl,
       CASE WHEN c.relkind = 'S' THEN {_acl("c.relacl", "s", "c.relowner")} END AS seq_acl,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls,
       (SELECT array_agg(o ORDER BY o) FROM unnest(c.reloptions) o) AS options,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partbound,
       c.relispartition AS is_partition,
       (SELECT array_agg(format('%%s.%%s', pn.nspname, pc.relname) ORDER BY i.inhseqno) FROM pg_inherits i
          JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE i.inhrelid = c.oid) AS parents,
       c.relreplident AS replident,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition,
       c.relispopulated AS populated,
       CASE WHEN c.relkind = 'c' THEN (SELECT t.oid FROM pg_type t WHERE t.oid = c.reltype) END AS typoid,
       CASE WHEN c.relkind = 'c' THEN (SELECT t.typarray FROM pg_type t WHERE t.oid = c.reltype) END AS typarray,
       CASE WHEN c.relkind = 'c' THEN (SELECT {_acl("t.typacl", "T", "t.typowner")} FROM pg_type t
            WHERE t.oid = c.reltype) END AS type_acl,
       CASE WHEN c.relkind = 'c' THEN obj_description(c.reltype, 'pg_type') END AS type_comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description dsc ON dsc.objoid = c.oid AND dsc.classoid = 'pg_class'::regclass AND dsc.objsubid = 0
WHERE {SCOPE} AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'S', 'f') AND {_not_ext("pg_class", "c.oid")}
"""

COLUMNS = f"""
SELECT c.oid AS reloid, a.attnum, n.nspname AS schema, c.relname AS table_name, c.relkind, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
       CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS default,
       CASE WHEN a.attgenerated = 's' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS generated,
       a.attidentity AS identity,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
            THEN (SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN quote_ident(co.collname)
                  ELSE format('%%I.%%I', cn.nspname, co.collname) END FROM pg_collation co
                  JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation,
       dsc.description AS comment,
       {_acl("a.attacl", "", "0")} AS acl,
       a.attislocal AS islocal, a.attinhcount AS inhcount,
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END AS stattarget,
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END AS storage,
       CASE WHEN a.attstorage <> t.typstorage THEN t.typstorage END AS storage_default,
       CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
       CASE WHEN a.attidentity <> '' THEN (SELECT format('%%s|%%s|%%s|%%s|%%s|%%s|%%s', format_type(s.seqtypid, NULL),
               s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
          FROM pg_depend d JOIN pg_sequence s ON s.seqrelid = d.objid
         WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
           AND d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'i' LIMIT 1) END AS identity_seq,
       (SELECT format('%%I.%%I', sn.nspname, sc.relname)
          FROM pg_depend d JOIN pg_class sc ON sc.oid = d.objid JOIN pg_namespace sn ON sn.oid = sc.relnamespace
         WHERE a.attidentity <> '' AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
           AND d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'i' AND sc.relkind = 'S'
         LIMIT 1) AS identity_seq_name
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_description dsc ON dsc.objoid = c.oid AND dsc.classoid = 'pg_class'::regclass AND dsc.objsubid = a.attnum
WHERE {SCOPE} AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND {_not_ext("pg_class", "c.oid")}
"""

CONSTRAINTS = f"""
SELECT k.oid, k.conindid, n.nspname AS schema, c.relname AS table_name, k.conname AS name, k.contype,
       pg_get_constraintdef(k.oid) AS definition, dsc.description AS comment,
       k.conislocal AS islocal, k.coninhcount AS inhcount, k.conparentid <> 0 AS has_parent,
       (SELECT format('%%s.%%s.%%s', pn.nspname, pc.relname, pk.conname) FROM pg_constraint pk
          JOIN pg_class pc ON pc.oid = pk.conrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE pk.oid = k.conparentid) AS inherited_from,
       EXISTS (SELECT 1 FROM pg_constraint pk WHERE pk.oid = k.conparentid AND pk.conrelid = k.conrelid)
          AS clone_on_same_table,
       (SELECT format('%%s.%%s', pn.nspname, pc.relname) FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE k.contype IN ('p', 'u', 'x') AND h.inhrelid = k.conindid)
          AS index_attached_to
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description dsc ON dsc.objoid = k.oid AND dsc.classoid = 'pg_constraint'::regclass AND dsc.objsubid = 0
WHERE {SCOPE} AND k.conrelid <> 0 AND {_not_ext("pg_class", "c.oid")}
"""

# The index of a primary key, unique or exclusion constraint is described by the constraint: its definition
# (pg_get_indexdef, the costly part: half the indexes of a typical schema) is not read.
INDEXES = f"""
SELECT x.*, CASE WHEN NOT x.constraint_backed THEN pg_get_indexdef(x.oid) END AS definition FROM (
SELECT i.indexrelid AS oid, n.nspname AS schema, ic.relname AS name, c.relname AS table_name, c.relkind,
       dsc.description AS comment,
       i.indisclustered AS clustered, i.indisreplident AS replident, i.indisvalid AS valid,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
               AND k.contype IN ('p', 'u', 'x')) AS constraint_backed,
       (SELECT format('%%s.%%s', pn.nspname, pc.relname) FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
          JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE h.inhrelid = i.indexrelid) AS attached_to,
       (SELECT array_agg(ARRAY[a.attnum, a.attstattarget] ORDER BY a.attnum) FROM pg_attribute a
          WHERE a.attrelid = i.indexrelid AND a.attnum > 0 AND a.attstattarget >= 0) AS stattargets
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description dsc ON dsc.objoid = i.indexrelid AND dsc.classoid = 'pg_class'::regclass AND dsc.objsubid = 0
WHERE {SCOPE} AND {_not_ext("pg_class", "c.oid")}
) x
"""

SEQUENCES = """
SELECT s.seqrelid AS oid, format_type(s.seqtypid, NULL) AS data_type, s.seqstart AS start,
       s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqcache AS cache, s.seqcycle AS cycle,
       (SELECT format('%%s.%%s.%%s', tn.nspname, tc.relname, ta.attname)
          FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid
          JOIN pg_namespace tn ON tn.oid = tc.relnamespace
          JOIN pg_attribute ta ON ta.attrelid = tc.oid AND ta.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS owned_by,
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
               AND d.deptype = 'i') AS is_identity
FROM pg_sequence s
"""

FUNCTIONS = f"""
SELECT p.oid, n.nspname AS schema, p.proname AS name, oidvectortypes(p.proargtypes) AS identity_args,
       p.prokind AS prokind,
       CASE WHEN p.prokind = 'a' THEN (SELECT format('CREATE AGGREGATE %%I.%%I(%%s) (%%s)', n.nspname, p.proname,
                pg_get_function_arguments(p.oid), concat_ws(', ',
                'SFUNC = ' || a.aggtransfn::regproc::text, 'STYPE = ' || format_type(a.aggtranstype, NULL),
                CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END,
                CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC = ' || a.aggfinalfn::regproc::text END,
                CASE WHEN a.aggfinalextra THEN 'FINALFUNC_EXTRA' END,
                CASE WHEN a.aggcombinefn <> 0 THEN 'COMBINEFUNC = ' || a.aggcombinefn::regproc::text END,
                CASE WHEN a.aggserialfn <> 0 THEN 'SERIALFUNC = ' || a.aggserialfn::regproc::text END,
                CASE WHEN a.aggdeserialfn <> 0 THEN 'DESERIALFUNC = ' || a.aggdeserialfn::regproc::text END,
                CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || quote_literal(a.agginitval) END,
                CASE WHEN a.aggsortop <> 0 THEN 'SORTOP = OPERATOR(' || (SELECT format('%%I.%%s', opn.nspname,
                     o.oprname) FROM pg_operator o JOIN pg_namespace opn ON opn.oid = o.oprnamespace
                     WHERE o.oid = a.aggsortop) || ')' END,
                CASE WHEN p.proparallel <> 'u' THEN 'PARALLEL = ' ||
                     CASE p.proparallel WHEN 's' THEN 'SAFE' ELSE 'RESTRICTED' END END))
            FROM pg_aggregate a WHERE a.aggfnoid = p.oid AND a.aggkind = 'n')
            ELSE pg_get_functiondef(p.oid) END AS definition,
       pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result,
       pg_get_userbyid(p.proowner) AS owner, obj_description(p.oid, 'pg_proc') AS comment,
       {_acl("p.proacl", "f", "p.proowner")} AS acl
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {SCOPE} AND p.prokind IN ('f', 'p', 'w', 'a') AND {_not_ext("pg_proc", "p.oid")}
"""

TRIGGERS = f"""
SELECT g.oid, n.nspname AS schema, c.relname AS table_name, c.relkind, g.tgname AS name,
       pg_get_triggerdef(g.oid) AS definition, g.tgenabled AS enabled,
       obj_description(g.oid, 'pg_trigger') AS comment
FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {SCOPE} AND NOT g.tgisinternal AND g.tgparentid = 0 AND {_not_ext("pg_class", "c.oid")}
"""

POLICIES = f"""
SELECT p.oid, n.nspname AS schema, c.relname AS table_name, p.polname AS name, p.polcmd AS cmd,
       p.polpermissive AS permissive,
       (SELECT array_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END ORDER BY 1)
          FROM unnest(p.polroles) r) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS with_check,
       obj_description(p.oid, 'pg_policy') AS comment
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {SCOPE}
"""

DEFAULT_ACLS = f"""
SELECT d.oid, pg_get_userbyid(d.defaclrole) AS role, n.nspname AS schema, d.defaclobjtype AS objtype,
       {_acl("d.defaclacl", "", "0")} AS acl
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
"""

DEPENDS = """
SELECT CASE WHEN d.classid = 'pg_rewrite'::regclass AND r.rulename = '_RETURN' THEN 'pg_class'
            WHEN d.classid = 'pg_attrdef'::regclass THEN 'pg_class'
            WHEN dc.contypid <> 0 THEN 'pg_type' ELSE d.classid::regclass::text END AS cls,
       CASE WHEN d.classid = 'pg_rewrite'::regclass AND r.rulename = '_RETURN' THEN r.ev_class
            WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adrelid
            WHEN dc.contypid <> 0 THEN dc.contypid ELSE d.objid END AS objid,
       CASE WHEN d.classid = 'pg_rewrite'::regclass AND r.rulename = '_RETURN' THEN 0
            WHEN d.classid = 'pg_attrdef'::regclass THEN ad.adnum
            WHEN dc.contypid <> 0 THEN 0 ELSE d.objsubid END AS objsubid,
       d.refclassid::regclass::text AS refcls, d.refobjid, d.refobjsubid, d.deptype
FROM pg_depend d
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid
LEFT JOIN pg_constraint dc ON d.classid = 'pg_constraint'::regclass AND dc.oid = d.objid
WHERE d.objid >= 16384 AND d.refobjid >= 16384 AND d.deptype IN ('n', 'a', 'e')
"""

RULES = f"""
SELECT r.oid, n.nspname AS schema, c.relname AS table_name, c.relkind, r.rulename AS name,
       pg_get_ruledef(r.oid) AS definition, r.ev_enabled AS enabled,
       obj_description(r.oid, 'pg_rewrite') AS comment
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {SCOPE} AND r.rulename <> '_RETURN' AND {_not_ext("pg_class", "c.oid")}
"""

STATISTICS = f"""
SELECT s.oid, n.nspname AS schema, s.stxname AS name, tn.nspname AS table_schema, c.relname AS table_name,
       c.relkind, pg_get_statisticsobjdef(s.oid) AS definition, obj_description(s.oid, 'pg_statistic_ext') AS comment,
       pg_get_userbyid(s.stxowner) AS owner
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace JOIN pg_class c ON c.oid = s.stxrelid
JOIN pg_namespace tn ON tn.oid = c.relnamespace
WHERE {SCOPE} AND {_not_ext("pg_statistic_ext", "s.oid")}
"""

# Event triggers (database-wide); the function's schema decides whether they are in scope.
EVENT_TRIGGERS = f"""
SELECT e.oid, e.evtname AS name, e.evtevent AS event,
       (SELECT array_agg(t ORDER BY t) FROM unnest(e.evttags) t) AS tags,
       e.evtenabled AS enabled, pg_get_userbyid(e.evtowner) AS owner, e.evtfoid AS funcoid,
       format('%%I.%%I', n.nspname, p.proname) AS function, n.nspname AS function_schema,
       obj_description(e.oid, 'pg_event_trigger') AS comment
FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {SCOPE} AND {_not_ext("pg_event_trigger", "e.oid")}
"""

# Publications (database-wide): `rel_schemas` / `schemas` decide whether they are in scope
# (introspect._filter_schemas). Tables are rendered as `CREATE PUBLICATION` writes them.
PUBLICATIONS = f"""
SELECT p.oid, p.pubname AS name, p.puballtables AS all_tables, p.pubviaroot AS via_root,
       concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                 CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END) AS publish,
       pg_get_userbyid(p.pubowner) AS owner, obj_description(p.oid, 'pg_publication') AS comment,
       (SELECT array_agg(format('%%I.%%I', n.nspname, c.relname)
               || coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                  FROM pg_attribute a WHERE a.attrelid = r.prrelid AND a.attnum = ANY(r.prattrs::int2[])) || ')', '')
               || coalesce(' WHERE (' || pg_get_expr(r.prqual, r.prrelid) || ')', '')
               ORDER BY n.nspname, c.relname)
          FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE r.prpubid = p.oid) AS tables,
       (SELECT array_agg(r.oid) FROM pg_publication_rel r WHERE r.prpubid = p.oid) AS rel_oids,
       (SELECT array_agg(DISTINCT n.nspname) FROM pg_publication_rel r JOIN pg_class c ON c.oid = r.prrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE r.prpubid = p.oid) AS rel_schemas,
       (SELECT array_agg(n.nspname ORDER BY n.nspname) FROM pg_publication_namespace s
          JOIN pg_namespace n ON n.oid = s.pnnspid WHERE s.pnpubid = p.oid) AS schemas,
       (SELECT array_agg(s.oid) FROM pg_publication_namespace s WHERE s.pnpubid = p.oid) AS schema_oids
FROM pg_publication p
WHERE {_not_ext("pg_publication", "p.oid")}
"""

# User-defined casts (database-wide): not built in, not of an extension. `schemas` (of the two types and
# the function) decides whether they are in scope (introspect._filter_schemas).
CASTS = f"""
SELECT c.oid, format_type(c.castsource, NULL) AS source, format_type(c.casttarget, NULL) AS target,
       c.castmethod AS method, CASE WHEN c.castfunc <> 0 THEN c.castfunc::regprocedure::text END AS function,
       c.castcontext AS context, obj_description(c.oid, 'pg_cast') AS comment,
       ARRAY(SELECT DISTINCT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE t.oid IN (c.castsource, c.casttarget)
             UNION SELECT n.nspname FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
              WHERE f.oid = c.castfunc) AS schemas
FROM pg_cast c
WHERE c.oid >= 16384 AND {_not_ext("pg_cast", "c.oid")}
"""

OPERATORS = f"""
SELECT o.oid, n.nspname AS schema, o.oprname AS name,
       CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END AS leftarg,
       CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END AS rightarg,
       o.oprcode::regproc::text AS function,
       (SELECT format('OPERATOR(%%I.%%s)', cn.nspname, c.oprname) FROM pg_operator c
          JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom) AS commutator,
       (SELECT format('OPERATOR(%%I.%%s)', cn.nspname, c.oprname) FROM pg_operator c
          JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprnegate) AS negator,
       CASE WHEN o.oprrest <> 0 THEN o.oprrest::regproc::text END AS restrict,
       CASE WHEN o.oprjoin <> 0 THEN o.oprjoin::regproc::text END AS "join",
       o.oprcanhash AS hashes, o.oprcanmerge AS merges,
       pg_get_userbyid(o.oprowner) AS owner, obj_description(o.oid, 'pg_operator') AS comment
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
WHERE {SCOPE} AND o.oprcode <> 0 AND {_not_ext("pg_operator", "o.oid")}
"""

TS_DICTIONARIES = f"""
SELECT d.oid, n.nspname AS schema, d.dictname AS name,
       (SELECT format('%%I.%%I', tn.nspname, t.tmplname) FROM pg_ts_template t
          JOIN pg_namespace tn ON tn.oid = t.tmplnamespace WHERE t.oid = d.dicttemplate) AS template,
       d.dictinitoption AS options, pg_get_userbyid(d.dictowner) AS owner,
       obj_description(d.oid, 'pg_ts_dict') AS comment
FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
WHERE {SCOPE} AND {_not_ext("pg_ts_dict", "d.oid")}
"""

# Mappings as 'token alias: dictionary, dictionary' (dictionaries in order, qualified outside pg_catalog).
TS_CONFIGURATIONS = f"""
SELECT c.oid, n.nspname AS schema, c.cfgname AS name,
       (SELECT format('%%I.%%I', pn.nspname, p.prsname) FROM pg_ts_parser p
          JOIN pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser) AS parser,
       (SELECT array_agg(format('%%s: %%s', t.alias, m.dicts) ORDER BY t.alias)
          FROM ts_token_type(c.cfgparser) t
          JOIN (SELECT maptokentype, string_agg(mapdict::regdictionary::text, ', ' ORDER BY mapseqno) AS dicts
                  FROM pg_ts_config_map WHERE mapcfg = c.oid GROUP BY maptokentype) m ON m.maptokentype = t.tokid)
          AS mappings,
       pg_get_userbyid(c.cfgowner) AS owner, obj_description(c.oid, 'pg_ts_config') AS comment
FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
WHERE {SCOPE} AND {_not_ext("pg_ts_config", "c.oid")}
"""

ALL: dict[str, str] = {
    "schemas": SCHEMAS,
    "extensions": EXTENSIONS,
    "collations": COLLATIONS,
    "types": TYPES,
    "relations": RELATIONS,
    "columns": COLUMNS,
    "constraints": CONSTRAINTS,
    "indexes": INDEXES,
    "sequences": SEQUENCES,
    "functions": FUNCTIONS,
    "triggers": TRIGGERS,
    "policies": POLICIES,
    "default_acls": DEFAULT_ACLS,
    "rules": RULES,
    "statistics": STATISTICS,
    "event_triggers": EVENT_TRIGGERS,
    "publications": PUBLICATIONS,
    "casts": CASTS,
    "operators": OPERATORS,
    "ts_dictionaries": TS_DICTIONARIES,
    "ts_configurations": TS_CONFIGURATIONS,
    "depends": DEPENDS,
}
