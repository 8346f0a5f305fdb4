"""Pre-exec steps of the sandbox's postmaster, run as `python -I -S _launcher.py SPEC` and exec'd away.

This runs in a fresh single-threaded interpreter (never as a `preexec_fn` in the pipeline's possibly
threaded process), imports only the standard library, and then becomes `postgres` (same pid). In order:
1. own network namespace: as root `unshare(CLONE_NEWNET)`; otherwise `unshare(CLONE_NEWUSER|CLONE_NEWNET)`
   with the caller's uid/gid mapped to themselves; failure is reported, not fatal;
2. resource limits: RLIMIT_FSIZE (no single file above the limit), no core dumps;
3. as root: drop every group, then gid, then uid to the sandbox user;
4. PR_SET_PDEATHSIG = SIGQUIT (immediate shutdown when the spawning thread dies; set after the uid change,
   which clears it), then check that the parent did not die in between;
5. write one JSON line to the status fd (close-on-exec, so the parent sees EOF once exec succeeded), and
   exec postgres with the given (empty) environment.
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
ISOLATION_BROKEN = 86  # exit code: a half-made namespace; the parent retries without isolation


def _unshare_network(libc, spec: dict) -> tuple[bool, str]:
    if os.geteuid() == 0:
        if libc.unshare(CLONE_NEWNET) != 0:
            return False, f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
        return True, "own network namespace"
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False, f"unshare(CLONE_NEWUSER|CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    except OSError as exc:
        _report(spec, {"error": f"user namespace mapping failed: {exc}"})
        os._exit(ISOLATION_BROKEN)
    return True, "own user and network namespace"


def _report(spec: dict, data: dict) -> None:
    os.write(spec["status_fd"], (json.dumps(data) + "\n").encode())


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.set_inheritable(spec["status_fd"], False)
    libc = ctypes.CDLL(None, use_errno=True)
    report = {"isolated_network": False, "network": "not requested", "pdeathsig": False}
    if spec["isolate_network"]:
        report["isolated_network"], report["network"] = _unshare_network(libc, spec)
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["max_file_size"], spec["max_file_size"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if spec["uid"] is not None:
        os.setgroups([])
        if hasattr(os, "setresuid"):
            os.setresgid(spec["gid"], spec["gid"], spec["gid"])
            os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        else:  # macOS: setgid/setuid as root set the real, effective and saved ids
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])
    if spec["pdeathsig"]:
        report["pdeathsig"] = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGQUIT), 0, 0, 0) == 0
        if os.getppid() != spec["parent_pid"]:
            os._exit(1)  # the pipeline died before the signal was armed
    _report(spec, report)
    try:
        os.execve(spec["program"], spec["argv"], spec["env"])
    except OSError as exc:
        _report(spec, {"error": f"cannot run {spec['program']} as uid {os.getuid()}: {exc.strerror}"})
        os._exit(127)


if __name__ == "__main__":
    main()
