"""The operating-system user the sandbox's server runs as.

Run by root, the pipeline hands the cluster to an unprivileged user (`nobody` unless
`$SCHEMA_PIPELINE_SANDBOX_USER` names another one, by name or uid): PostgreSQL refuses to run as root, and the
server must not be able to read what root can. A dedicated user is better than `nobody`, whose other
processes on the host could otherwise reach the sandbox's files. Run by anyone else, the server runs as
that same user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from schema_pipeline.sandbox.errors import SandboxError

SANDBOX_USER_ENV = "SCHEMA_PIPELINE_SANDBOX_USER"
DEFAULT_SANDBOX_USER = "nobody"


@dataclass(frozen=True)
class OsUser:
    """A user to run the server as (only used when the pipeline runs as root)."""

    name: str
    uid: int
    gid: int


def sandbox_user() -> OsUser | None:
    """The user to switch to, or None when the pipeline is not root (the server then runs as the caller)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    wanted = os.environ.get(SANDBOX_USER_ENV, "").strip() or DEFAULT_SANDBOX_USER
    try:
        entry = pwd.getpwuid(int(wanted)) if wanted.isdigit() else pwd.getpwnam(wanted)
    except KeyError:
        raise SandboxError(f"the sandbox user {wanted!r} does not exist; create an unprivileged user for the"
                           f" plan sandbox or name one in {SANDBOX_USER_ENV}") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxError(f"the sandbox user {wanted!r} is root or in group root; {SANDBOX_USER_ENV} must"
                           " name an unprivileged user")
    return OsUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def caller_name() -> str | None:
    """The name of the user this process runs as (what peer authentication sees), if it has one."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return None
