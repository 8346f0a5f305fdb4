"""The allow-list: which statements a desired-state file may contain, decided on libpg_query's parse tree.

A state file declares schema objects. Data changes, dynamic code, cluster-level objects (databases,
roles, tablespaces), credentials, server configuration and transaction control are refused here,
before any database is contacted, with the statement's file:line:column. What pg_dump writes stays
valid.

This is the friendly first line, not the security boundary: the state is then loaded into the plan
sandbox by a role that is not a superuser (schema_pipeline/sandbox), and PostgreSQL's own privilege
checks decide what any statement that passes here may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schema_pipeline.state.tree import name_list, sval

# Session settings pg_dump writes (and harmless ones like it): allowed, session-only.
SESSION_SETTINGS = frozenset([
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "transaction_timeout",
    "client_encoding", "standard_conforming_strings", "check_function_bodies", "xmloption",
    "client_min_messages", "row_security", "default_tablespace", "default_table_access_method",
    "search_path", "default_with_oids", "escape_string_warning",
])
_ALLOWED_SETTINGS = ", ".join(sorted(SESSION_SETTINGS))

UNTRUSTED_LANGUAGES = frozenset(
    ["c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "plsh", "pljavau", "plr"])
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})

# How the plan sandbox runs a statement that needs more than the loader's privileges (plandb.py):
# LAST: by the sandbox's administrator, after every other statement (event triggers never fire);
# RETRY: by the administrator when PostgreSQL refuses the loader for lack of privilege.
# EXTENSION + name: CREATE EXTENSION, by the administrator when the operator allows that (untrusted) extension.
LAST, RETRY, EXTENSION = "last", "retry", "extension:"

_DML = {
    "InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
    "TruncateStmt": "TRUNCATE", "CopyStmt": "COPY", "SelectStmt": "SELECT", "CallStmt": "CALL",
    "ExecuteStmt": "EXECUTE", "PrepareStmt": "PREPARE", "DeallocateStmt": "DEALLOCATE", "ExplainStmt": "EXPLAIN",
    "DeclareCursorStmt": "DECLARE", "FetchStmt": "FETCH", "ClosePortalStmt": "CLOSE", "VariableShowStmt": "SHOW",
    "PLAssignStmt": "assignment",
}
_OPERATIONAL = {
    "VacuumStmt": "VACUUM/ANALYZE", "ClusterStmt": "CLUSTER", "ReindexStmt": "REINDEX", "CheckPointStmt": "CHECKPOINT",
    "LoadStmt": "LOAD", "LockStmt": "LOCK", "DiscardStmt": "DISCARD", "ListenStmt": "LISTEN",
    "UnlistenStmt": "UNLISTEN", "NotifyStmt": "NOTIFY", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
}
_ROLES = {"CreateRoleStmt", "AlterRoleStmt", "AlterRoleSetStmt", "DropRoleStmt"}
_DATABASES = {"CreatedbStmt", "AlterDatabaseStmt", "AlterDatabaseSetStmt", "DropdbStmt",
              "AlterDatabaseRefreshCollStmt"}
_CLUSTER = {
    "CreateTableSpaceStmt": "CREATE TABLESPACE", "DropTableSpaceStmt": "DROP TABLESPACE",
    "AlterTableSpaceOptionsStmt": "ALTER TABLESPACE", "AlterTableMoveAllStmt": "ALTER ... SET TABLESPACE ... ALL",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION", "AlterSubscriptionStmt": "ALTER SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}
_CREDENTIALS = {
    "CreateForeignServerStmt": "CREATE SERVER", "AlterForeignServerStmt": "ALTER SERVER",
    "CreateUserMappingStmt": "CREATE USER MAPPING", "AlterUserMappingStmt": "ALTER USER MAPPING",
    "DropUserMappingStmt": "DROP USER MAPPING",
}
# Object kinds the engine does not model yet: refused rather than loaded and then silently missing.
_UNMANAGED = {
    "CreateAmStmt": "ACCESS METHOD", "CreateConversionStmt": "CONVERSION", "CreateTransformStmt": "TRANSFORM",
    "CreateFdwStmt": "FOREIGN DATA WRAPPER", "AlterFdwStmt": "FOREIGN DATA WRAPPER",
    "CreateForeignTableStmt": "FOREIGN TABLE", "CreateOpClassStmt": "OPERATOR CLASS",
    "CreateOpFamilyStmt": "OPERATOR FAMILY", "AlterOpFamilyStmt": "OPERATOR FAMILY",
    "ImportForeignSchemaStmt": "IMPORT FOREIGN SCHEMA (foreign tables)",
}
_CLUSTER_OBJTYPES = {"OBJECT_DATABASE": "DATABASE", "OBJECT_TABLESPACE": "TABLESPACE", "OBJECT_ROLE": "ROLE",
                     "OBJECT_SUBSCRIPTION": "SUBSCRIPTION", "OBJECT_PARAMETER_ACL": "PARAMETER",
                     "OBJECT_LARGEOBJECT": "LARGE OBJECT"}
_UNMANAGED_DEFINE = {"OBJECT_TSPARSER": "TEXT SEARCH PARSER", "OBJECT_TSTEMPLATE": "TEXT SEARCH TEMPLATE"}
_UNMANAGED_OBJTYPES = {"OBJECT_FOREIGN_TABLE": "FOREIGN TABLE", "OBJECT_OPCLASS": "OPERATOR CLASS",
                       "OBJECT_OPFAMILY": "OPERATOR FAMILY", "OBJECT_ACCESS_METHOD": "ACCESS METHOD",
                       "OBJECT_CONVERSION": "CONVERSION", "OBJECT_FDW": "FOREIGN DATA WRAPPER",
                       "OBJECT_TSPARSER": "TEXT SEARCH PARSER", "OBJECT_TSTEMPLATE": "TEXT SEARCH TEMPLATE"}

# Built-in text search configurations and dictionaries: PostgreSQL searches pg_catalog first, so an
# unqualified name among these means the built-in object.
_TS_LANGUAGES = [
    "arabic", "armenian", "basque", "catalan", "danish", "dutch", "english", "estonian", "finnish", "french",
    "german", "greek", "hindi", "hungarian", "indonesian", "irish", "italian", "lithuanian", "nepali",
    "norwegian", "polish", "portuguese", "romanian", "russian", "serbian", "spanish", "swedish", "tamil",
    "turkish", "yiddish"]
_BUILTIN_NAMES = {
    "OBJECT_TSCONFIGURATION": ("TEXT SEARCH CONFIGURATION", frozenset(["simple", *_TS_LANGUAGES])),
    "OBJECT_TSDICTIONARY": ("TEXT SEARCH DICTIONARY", frozenset(["simple", *(f"{x}_stem" for x in _TS_LANGUAGES)])),
}


@dataclass
class Verdict:
    """Outcome of checking one statement: problems (message, location offset or -1 for the statement's
    start), whether it only affects the loading session, and how the sandbox runs it."""

    problems: list[tuple[str, int]] = field(default_factory=list)  # (message, libpg_query location or -1)
    session_only: bool = False
    privileged: str = ""


def _refuse(message: str, location: int = -1) -> Verdict:
    return Verdict([(message, location)])


def _verb(node_type: str) -> str:
    """"CREATE " for CreateFdwStmt, "ALTER " for AlterFdwStmt, "" otherwise."""
    return next((f"{v.upper()} " for v in ("Create", "Alter", "Drop") if node_type.startswith(v)), "")


def _not_managed(what: str) -> str:
    return f"{what} is not managed by schema-pipeline yet; create it outside the state"


def _setting_value(node: dict) -> str:
    args = node.get("args") or []
    return (sval(args[0]) or "").strip().lower() if len(args) == 1 else ""


def set_config_search_path(node_type: str, node: dict) -> str | None:
    """`SELECT [pg_catalog.]set_config('search_path', '...', false)`, pg_dump's preamble line: its value."""
    if node_type != "SelectStmt" or set(node) - {"targetList", "limitOption", "op"}:
        return None
    targets = node.get("targetList") or []
    if len(targets) != 1:
        return None
    res = targets[0].get("ResTarget", {})
    call = (res.get("val") or {}).get("FuncCall")
    if res.get("name") or not call or set(call) - {"funcname", "args", "funcformat", "location"}:
        return None
    if name_list(call.get("funcname")) not in (["set_config"], ["pg_catalog", "set_config"]):
        return None
    args = call.get("args") or []
    if len(args) != 3 or not all("A_Const" in a for a in args):
        return None
    if sval(args[0]) != "search_path" or "sval" not in args[1]["A_Const"] or sval(args[2]) != "false":
        return None
    return sval(args[1])


def _check_set(node: dict) -> Verdict:
    kind, name = node.get("kind"), (node.get("name") or "").lower()
    if kind == "VAR_RESET_ALL":
        return _refuse(f"RESET ALL is not allowed; RESET is allowed in state files only for the session settings "
                       f"SET may change ({_ALLOWED_SETTINGS})")
    if kind == "VAR_RESET":
        if name in SESSION_SETTINGS:
            return Verdict(session_only=True)
        return _refuse(f"RESET is allowed in state files only for the session settings SET may change "
                       f"({_ALLOWED_SETTINGS})")
    if name == "session_authorization":
        return _refuse("SET SESSION AUTHORIZATION changes the acting role; roles are managed outside the state "
                       "(remove this statement)")
    if name == "role":
        return _refuse("SET ROLE changes the acting role; roles are managed outside the state (remove this statement)")
    if kind == "VAR_SET_MULTI" or name in ("transaction", "constraints", "session characteristics"):
        return _refuse(f"SET {name.upper() or 'TRANSACTION'} is transaction control; the pipeline manages "
                       "transactions (remove this statement)")
    if name not in SESSION_SETTINGS:
        return _refuse(f"SET {name} is not allowed in state files: only the session settings pg_dump writes may "
                       f"be set ({_ALLOWED_SETTINGS})")
    if name == "client_encoding" and kind == "VAR_SET_VALUE":
        value = _setting_value(node)
        if value not in ("utf8", "utf-8", "unicode"):
            return _refuse(f"SET client_encoding = {value or '?'}: state files are UTF-8, so only UTF8 is allowed")
    return Verdict(session_only=True)


def standard_strings_after(node_type: str, node: dict, current: bool) -> bool:
    """Whether '...' literals are standard (a backslash is an ordinary character) after this statement:
    changed by SET and RESET of standard_conforming_strings (pg_dump before 9.1 wrote it off)."""
    if node_type != "VariableSetStmt" or (node.get("name") or "").lower() != "standard_conforming_strings":
        return current
    if node.get("kind") != "VAR_SET_VALUE":
        return True
    return _setting_value(node) in ("on", "true", "1", "yes")


def _qualified(items: list | None) -> tuple[str | None, str]:
    """(schema or None, name) of a qualified-name list."""
    names = name_list(items)
    if not names:
        return None, ""
    return (names[-2] if len(names) > 1 else None), names[-1]


def _object_schema(objtype: str, obj: dict | None) -> tuple[str | None, str]:
    """(schema, name) written in an object reference of ALTER/DROP/COMMENT (schema None when unqualified)."""
    if not obj:
        return None, ""
    if "List" in obj:
        return _qualified(obj["List"].get("items"))
    if "ObjectWithArgs" in obj:
        return _qualified(obj["ObjectWithArgs"].get("objname"))
    if "TypeName" in obj:
        return _qualified(obj["TypeName"].get("names"))
    if "String" in obj:
        name = obj["String"].get("sval", "")
        return (name, name) if objtype == "OBJECT_SCHEMA" else (None, name)
    return None, ""


def _system_schema_problem(verb: str, what: str, schema: str | None, default_schema: str,
                           location: int) -> Verdict | None:
    schema = schema or default_schema
    if schema in SYSTEM_SCHEMAS:
        return _refuse(f"{verb} {what} of an object in system schema {schema!r} is not allowed; the pipeline never "
                       "touches system schemas", location)
    return None


def _builtin_name_problem(verb: str, objtype: str, schema: str | None, name: str, location: int) -> Verdict | None:
    label, names = _BUILTIN_NAMES.get(objtype, ("", frozenset()))
    if schema is None and name in names:
        return _refuse(f"{verb} {label} {name} names the built-in pg_catalog.{name} (PostgreSQL looks in pg_catalog "
                       f"first), and the pipeline never touches system schemas; for an object of your own, qualify "
                       f"its name (for example public.{name})", location)
    return None


_NAME_KEYS = {"CreateFunctionStmt": "funcname", "DefineStmt": "defnames", "CreateEnumStmt": "typeName",
              "CreateRangeStmt": "typeName", "CreateDomainStmt": "domainname", "CreateStatsStmt": "defnames"}


def _created_in(node_type: str, node: dict) -> tuple[str, str | None, str, int] | None:
    """(what, schema, name, location) of the object a CREATE statement creates in a schema."""
    rel = None
    if node_type in ("CreateStmt", "CreateForeignTableStmt"):
        rel = node.get("relation") or (node.get("base") or {}).get("relation")
    elif node_type == "ViewStmt":
        rel = node.get("view")
    elif node_type == "CreateTableAsStmt":
        rel = (node.get("into") or {}).get("rel")
    elif node_type == "CreateSeqStmt":
        rel = node.get("sequence")
    elif node_type == "CompositeTypeStmt":
        rel = node.get("typevar")
    if rel is not None:
        return "relation", rel.get("schemaname"), rel.get("relname", ""), rel.get("location", -1)
    if node_type == "IndexStmt":
        rel = node.get("relation") or {}
        return "index", rel.get("schemaname"), node.get("idxname") or "", rel.get("location", -1)
    key = _NAME_KEYS.get(node_type)
    if key is not None:
        schema, name = _qualified(node.get(key))
        return "object", schema, name, -1
    if node_type == "CreateSchemaStmt":
        name = node.get("schemaname") or ""
        return "schema", name, name, -1
    return None


def _language(node: dict) -> tuple[str | None, int]:
    """The language of CREATE FUNCTION (as PostgreSQL reads it, U& escapes resolved) and where it is written."""
    for opt in node.get("options") or ():
        d = opt.get("DefElem", {})
        if d.get("defname") == "language":
            return (sval(d.get("arg")) or "").lower(), d.get("location", -1)
    return None, -1


def _publication_needs_superuser(node: dict) -> bool:
    if node.get("for_all_tables"):
        return True
    return any((o.get("PublicationObjSpec") or {}).get("pubobjtype", "").startswith("PUBLICATIONOBJ_TABLES_IN")
               for o in node.get("pubobjects") or ())


def check_statement(node_type: str, node: dict, default_schema: str) -> Verdict:
    """Check one parsed statement against the allow-list."""
    if node_type == "TransactionStmt":
        return _refuse("transaction control is not allowed: the pipeline manages transactions itself")
    if set_config_search_path(node_type, node) is not None:
        return Verdict(session_only=True)
    if node_type in _DML:
        what = _DML[node_type]
        extra = ""
        if node_type == "CopyStmt" and node.get("is_program"):
            extra = " (COPY ... PROGRAM runs a shell command on the server)"
        return _refuse(f"{what} is a data or query statement (DML){extra}; state files may only declare schema "
                       "objects")
    if node_type == "DoStmt":
        return _refuse("DO blocks run dynamic code and are not allowed in state files; declare the objects directly")
    if node_type in _OPERATIONAL:
        return _refuse(f"{_OPERATIONAL[node_type]} is an operational command, not a schema declaration; remove it")
    if node_type == "VariableSetStmt":
        return _check_set(node)
    if node_type == "SecLabelStmt":
        return _refuse("SECURITY LABEL is not supported in state files (security providers are server configuration)")
    if node_type == "ReassignOwnedStmt":
        return _refuse("REASSIGN OWNED changes role ownership cluster-wide; roles are managed outside the state")
    if node_type == "DropOwnedStmt":
        return _refuse("DROP OWNED drops objects of roles cluster-wide; roles are managed outside the state")
    if node_type == "GrantRoleStmt":
        verb = "GRANT" if node.get("is_grant") else "REVOKE"
        return _refuse(f"{verb} of role membership changes roles, which are cluster-level and managed outside the "
                       "state (GRANT privileges ON objects is fine)")
    if node_type in _ROLES:
        return _refuse("roles are cluster-level and managed outside the state (the state may GRANT to roles that "
                       "exist); remove this statement")
    if node_type in _DATABASES:
        return _refuse("DATABASE statements are not allowed: the state describes the contents of one database, not "
                       "databases")
    if node_type == "AlterSystemStmt":
        return _refuse("ALTER SYSTEM changes server configuration; it is not allowed in state files")
    if node_type in _CLUSTER:
        return _refuse(f"{_CLUSTER[node_type]} is cluster-level and not allowed in state files")
    if node_type in _CREDENTIALS:
        what = _CREDENTIALS[node_type]
        return _refuse(f"{what} carries connection credentials; it is not allowed in state files: "
                       + _not_managed(what.split(" ", 1)[1]))
    if node_type in _UNMANAGED:
        return _refuse(_not_managed(f"{_verb(node_type)}{_UNMANAGED[node_type]}"))
    if node_type == "DefineStmt" and node.get("kind") in _UNMANAGED_DEFINE:
        return _refuse(_not_managed(f"CREATE {_UNMANAGED_DEFINE[node['kind']]}"))
    objtype = node.get("objtype") or node.get("objectType") or node.get("renameType") or ""
    if node_type in ("AlterOwnerStmt", "RenameStmt", "CommentStmt", "GrantStmt") and objtype in _CLUSTER_OBJTYPES:
        what = _CLUSTER_OBJTYPES[objtype]
        return _refuse(f"{what} {'is data' if objtype == 'OBJECT_LARGEOBJECT' else 'is cluster-level'}: the state "
                       f"declares the objects of one database, so statements on a {what.lower()} are not allowed "
                       "in state files")
    if node_type == "AlterExtensionContentsStmt":
        return _refuse("ALTER EXTENSION ... ADD/DROP changes which objects belong to an extension; extensions "
                       "manage their own members, and the state may not (remove this statement)")
    if node_type == "CreatePLangStmt" and (node.get("plname") or "").lower() in UNTRUSTED_LANGUAGES:
        return _refuse(f"CREATE LANGUAGE {node.get('plname')}: untrusted languages are not allowed")
    if node_type == "CreateExtensionStmt" and (node.get("extname") or "").lower() in UNTRUSTED_LANGUAGES:
        return _refuse(f"CREATE LANGUAGE {node.get('extname')}: untrusted languages are not allowed")
    if node_type == "CreateTableAsStmt" and node.get("objtype") == "OBJECT_TABLE" \
            and not (node.get("into") or {}).get("skipData"):
        return _refuse("CREATE TABLE ... AS runs a query when the state is loaded; declare the table's columns "
                       "instead (or add WITH NO DATA)")
    if node_type == "CreateFunctionStmt" and (lang := _language(node))[0] in UNTRUSTED_LANGUAGES:
        return _refuse(f"functions in untrusted language {lang[0]!r} are not allowed (they can run arbitrary code on "
                       "the server); use sql or plpgsql", lang[1])
    return _checknames(node_type, node, default_schema) or _privileged(node_type, node)


def _checknames(node_type: str, node: dict, default_schema: str) -> Verdict | None:
    """Objects created in, moved to, or changed in a system schema; built-in text search objects."""
    created = _created_in(node_type, node)
    if created is not None:
        what, schema, name, location = created
        if what == "schema":
            if name in SYSTEM_SCHEMAS or name.startswith("pg_"):
                return _refuse(f"schema {name} is a system schema name; objects may not be created in system schemas")
        elif (schema or default_schema) in SYSTEM_SCHEMAS:
            return _refuse(f"{name} would be created in system schema {(schema or default_schema)!r}; objects may "
                           "not be created in system schemas", location)
        return None
    if node_type == "AlterObjectSchemaStmt" and node.get("newschema") in SYSTEM_SCHEMAS:
        return _refuse(f"SET SCHEMA {node['newschema']} moves an object into a system schema; the pipeline never "
                       "touches system schemas")
    objtype = node.get("objtype") or node.get("objectType") or node.get("removeType") or node.get("renameType") or ""
    targets: list[dict | None] = []
    if node_type in ("AlterObjectSchemaStmt", "AlterOwnerStmt", "CommentStmt", "AlterObjectDependsStmt"):
        targets = [node.get("object")]
    elif node_type == "RenameStmt":
        rel = node.get("relation")
        if rel is not None:
            return _system_schema_problem("ALTER", "TABLE", rel.get("schemaname"), default_schema,
                                          rel.get("location", -1))
        targets = [node.get("object")]
    elif node_type == "DropStmt":
        targets = list(node.get("objects") or ())
    elif node_type in ("AlterTableStmt", "AlterSeqStmt"):
        rel = node.get("relation") or node.get("sequence") or {}
        what = "SEQUENCE" if node_type == "AlterSeqStmt" else (node.get("objtype") or "OBJECT_TABLE")[7:]
        return _system_schema_problem("ALTER", what.replace("_", " "), rel.get("schemaname"), default_schema,
                                      rel.get("location", -1))
    elif node_type == "AlterFunctionStmt":
        targets = [{"ObjectWithArgs": node.get("func") or {}}]
    elif node_type == "AlterTSConfigurationStmt":
        targets = [{"List": {"items": node.get("cfgname")}}]
        objtype = "OBJECT_TSCONFIGURATION"
    elif node_type == "AlterTSDictionaryStmt":
        targets = [{"List": {"items": node.get("dictname")}}]
        objtype = "OBJECT_TSDICTIONARY"
    verb = {"DropStmt": "DROP", "CommentStmt": "COMMENT ON"}.get(node_type, "ALTER")
    for target in targets:
        schema, name = _object_schema(objtype, target)
        if objtype in ("OBJECT_SCHEMA",):
            if name in SYSTEM_SCHEMAS:
                return _refuse(f"{verb} SCHEMA {name}: the pipeline never touches system schemas")
            continue
        if objtype in ("OBJECT_EXTENSION", "OBJECT_LANGUAGE", "OBJECT_EVENT_TRIGGER", "OBJECT_PUBLICATION",
                       "OBJECT_CAST", "OBJECT_DATABASE", "OBJECT_ROLE", "OBJECT_TABLESPACE", "OBJECT_FDW",
                       "OBJECT_FOREIGN_SERVER", "OBJECT_SUBSCRIPTION", "OBJECT_USER_MAPPING", "OBJECT_ACCESS_METHOD"):
            continue
        problem = (_builtin_name_problem(verb, objtype, schema, name, -1)
                   or _system_schema_problem(verb, _label(objtype), schema, default_schema, -1))
        if problem:
            return problem
    return None


_LABELS = {"OBJECT_TSCONFIGURATION": "TEXT SEARCH CONFIGURATION", "OBJECT_TSDICTIONARY": "TEXT SEARCH DICTIONARY",
           "OBJECT_MATVIEW": "MATERIALIZED VIEW", "OBJECT_FOREIGN_TABLE": "FOREIGN TABLE"}


def _label(objtype: str) -> str:
    """OBJECT_MATVIEW -> MATERIALIZED VIEW, OBJECT_FUNCTION -> FUNCTION."""
    return _LABELS.get(objtype, objtype.removeprefix("OBJECT_").replace("_", " "))


_EVENT_TRIGGER_NODES = {"CreateEventTrigStmt", "AlterEventTrigStmt"}


def _privileged(node_type: str, node: dict) -> Verdict:
    """Statements of the kinds that need a superuser to create; everything else runs as the loader."""
    objtype = node.get("objtype") or node.get("objectType") or node.get("removeType") or node.get("renameType")
    if node_type in _EVENT_TRIGGER_NODES or objtype == "OBJECT_EVENT_TRIGGER":
        return Verdict(privileged=LAST)
    if node_type == "CreatePublicationStmt" and _publication_needs_superuser(node):
        return Verdict(privileged=RETRY)
    if node_type == "AlterPublicationStmt" and _publication_needs_superuser(node):
        return Verdict(privileged=RETRY)
    if node_type == "CreateCastStmt" and not node.get("func") and not node.get("inout"):
        return Verdict(privileged=RETRY)  # WITHOUT FUNCTION: binary coercible, no code involved
    if node_type == "AlterOwnerStmt" or (node_type == "AlterTableStmt" and node.get("cmds") and all(
            (c.get("AlterTableCmd") or {}).get("subtype") == "AT_ChangeOwner" for c in node["cmds"])):
        # PostgreSQL lets the loader give an object to a role it is a member of only when that role may create in
        # the schema; on the target the role has its own privileges, in the sandbox it has none. Ownership changes
        # run no code.
        return Verdict(privileged=RETRY)
    if node_type in ("CreateFunctionStmt", "AlterFunctionStmt") and any(
            (o.get("DefElem") or {}).get("defname") == "leakproof"
            for o in (node.get("options") or []) + (node.get("actions") or [])):
        # Only a superuser may mark a function LEAKPROOF; the sandbox gives the function back to the loader at
        # once (plandb), so a SECURITY DEFINER function never runs as the administrator.
        return Verdict(privileged=RETRY)
    if node_type == "CreateExtensionStmt":
        return Verdict(privileged=f"{EXTENSION}{node.get('extname') or ''}")  # untrusted: only when allowed
    if node_type == "CommentStmt" and objtype == "OBJECT_EXTENSION":
        return Verdict(privileged=RETRY)  # the extension may be owned by the sandbox's administrator
    return Verdict()


def search_path_value(node_type: str, node: dict) -> str | None:
    """The search_path a statement sets (SET search_path, set_config), as PostgreSQL would show it."""
    if node_type == "VariableSetStmt" and (node.get("name") or "").lower() == "search_path":
        if node.get("kind") in ("VAR_SET_DEFAULT", "VAR_RESET"):
            return '"$user", public'
        if node.get("kind") == "VAR_SET_VALUE":
            return ", ".join(sval(a) or "" for a in node.get("args") or ())
        return None
    return set_config_search_path(node_type, node)


def first_schema(path: str) -> str:
    """The schema unqualified names resolve to for a search_path value (default public)."""
    for entry in path.split(","):
        e = entry.strip().strip('"')
        if e and e not in ("$user", "pg_temp"):
            return e
    return "public"
