"""Connections to PostgreSQL: open with clear errors, and never leak a password."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from schema_pipeline.errors import ConnectionFailed

_PASSWORD_IN_URL = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact(text: str, *secrets: str | None) -> str:
    """Remove passwords from URLs/conninfo strings in `text`, plus any literal `secrets`."""
    out = _PASSWORD_IN_URL.sub(r"\1***\3", text)
    out = _PASSWORD_KV.sub(r"\1***", out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out


def password_of(url: str) -> str | None:
    """The password carried by a URL or conninfo string, if any (to scrub it from messages)."""
    try:
        return conninfo_to_dict(url).get("password") or None
    except psycopg.ProgrammingError:
        return None


def describe(url: str) -> str:
    """A human label for a database: user@host:port/dbname, without the password."""
    try:
        p = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return redact(url)
    host = p.get("host") or "localhost"
    if host.startswith("/"):
        host = f"[socket {host}]"
    port = f":{p['port']}" if p.get("port") else ""
    user = f"{p['user']}@" if p.get("user") else ""
    return f"{user}{host}{port}/{p.get('dbname', '')}"


def connect(url: str, *, autocommit: bool = True, application_name: str = "schema_pipeline") -> psycopg.Connection:
    """Open a connection; failures raise ConnectionFailed with a password-free message."""
    try:
        conninfo = make_conninfo(url, application_name=application_name, connect_timeout=10)
        return psycopg.connect(conninfo, autocommit=autocommit)
    except (psycopg.Error, ValueError) as exc:
        msg = redact(str(exc).strip(), password_of(url))
        raise ConnectionFailed(f"cannot connect to {describe(url)}: {msg}") from None


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, but database `dbname`."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), parts.query, parts.fragment))
    return make_conninfo(url, dbname=dbname)


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname", "")
