"""Scripts in a bubblewrap (``bwrap``) sandbox: nothing of the host but what a script needs.

The sandbox sees read-only binds of the system (``/usr``, ``/lib*``, the loader's files) and of
the interpreter's prefixes, the execution's workspace read-write with ``context/`` read-only,
a private ``/tmp``, its own ``/proc`` (new PID namespace: no other process is visible) and a
minimal ``/dev``. No database file, no ``.env``, no bot's working directory. New PID, IPC, UTS
and network namespaces (``script.network: true`` keeps the host's network); ``--new-session``
and ``--die-with-parent``. The environment is the script's allow-list only: bwrap gets no
other (it passes its own on; values on its command line would show in ``ps``).

It runs as ``nobody`` (uid 65534). When the bot is root, bwrap runs privileged without a user
namespace (a user namespace created by root maps the sandbox's user back to root, which owns
the host's files) and ``setpriv`` drops to the real uid 65534 with every capability removed;
the workspace (but context/ and form/) is handed to that uid for the attempt and back
afterwards. When the bot is not root, a user namespace maps nobody onto the bot's own uid.

The timeout kills the namespace's pid 1 (bwrap's init, whose host pid bwrap reports on its
info fd): the kernel then kills every process of the namespace, ``setsid`` or not, before
bwrap returns. RLIMIT_NPROC, set by ``prlimit`` inside the sandbox, bounds the processes: it
counts per real uid (65534, shared by concurrent scripts when the bot is root) or, in a user
namespace, per namespace; set outside it would count the bot's own processes too.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine import messages
from engine.errors import ScriptProblem

NOBODY = 65534
KEPT = ("context", "form")  # read-only in the sandbox, and never the sandbox user's
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# the loader, names of users and zones, certificates: nothing secret
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
)
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/services", "/etc/gai.conf")


@dataclass(frozen=True)
class SandboxConfig:
    """``mode``: "bwrap" (every script in the sandbox, or it fails) or "none" (the operator's choice)."""

    mode: str = "bwrap"
    bwrap: str = "bwrap"

    @property
    def enabled(self) -> bool:
        return self.mode != "none"


def unavailable(bwrap: str = "bwrap") -> str | None:
    """Why bwrap cannot run here (None when it can): missing, or namespaces not allowed."""
    found = shutil.which(bwrap)
    return f"{bwrap} not found" if found is None else _probe(found)


@functools.cache
def _probe(found: str) -> str | None:
    command = [found, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--proc", "/proc", "true"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{found} cannot start: {exc}"
    if done.returncode != 0:
        return f"{found} cannot create a sandbox here: {done.stderr.decode(errors='replace').strip()}"
    return None


def check(config: SandboxConfig) -> str:
    """The bwrap executable to use; ScriptProblem naming the package and the setting if none."""
    reason = unavailable(config.bwrap)
    if reason is not None:
        raise ScriptProblem(messages.SANDBOX_MISSING.format(reason=reason))
    found = shutil.which(config.bwrap)
    assert found is not None
    return found


def command(
    bwrap: str,
    inner: list[str],
    *,
    workdir: Path,
    network: bool,
    read_only: Iterable[Path],
    info_fd: int,
    max_processes: int,
) -> list[str]:
    """The bwrap command line that runs ``inner`` in ``workdir`` (paths are the same inside)."""
    root = os.geteuid() == 0
    args = [bwrap, "--info-fd", str(info_fd), "--die-with-parent", "--new-session"]
    if root:  # no user namespace: see the module's docstring
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        args += [] if network else ["--unshare-net"]
    else:
        args += ["--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        args += ["--share-net"] if network else []
    made: set[str] = {"/"}
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    made.update(SYSTEM_DIRS)
    for f in SYSTEM_FILES + (NETWORK_FILES if network else ()):
        args += ["--ro-bind-try", f, f]
    made.add("/etc")
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    made.update({"/proc", "/dev", "/tmp"})
    binds = [(p, True) for p in _interpreter_dirs(inner[0])] + [(Path(p), True) for p in read_only]
    binds.append((workdir, False))
    binds += [(workdir / name, True) for name in KEPT if (workdir / name).is_dir()]
    cwd = Path.cwd()
    for path, ro in binds:
        if str(path) == "/" or (ro and _covered(path, SYSTEM_DIRS)) or cwd.is_relative_to(path):
            continue  # never the bot's working directory (its .env) or what holds it
        args += _parents(path, made)
        args += ["--ro-bind" if ro else "--bind", str(path), str(path)]
        made.add(str(path))
    args += ["--chdir", str(workdir)]
    # set inside: in the bot's own namespace it would count (and cap) the bot's processes too
    args += [_util("prlimit"), f"--nproc={max_processes}:{max_processes}", "--"]
    if root:
        drop = ["--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
        drop += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        args += [_util("setpriv"), *drop]
    return [*args, *inner]


def script_dir_binds(script: Path, cwd: Path) -> list[Path]:
    """A path script's folder (for its own modules), or the file alone when that folder holds
    the bot's working directory (its .env, perhaps its database)."""
    folder = script.parent
    return [script] if cwd.is_relative_to(folder) else [folder]


def hand_over(workdir: Path) -> None:
    """Root: the sandbox's user may write the workspace, and rewrite what an earlier attempt
    left there; context/ and form/ (the uploads, already artifacts) stay the bot's, read-only."""
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(workdir):
        if root == str(workdir):
            dirs[:] = [d for d in dirs if d not in KEPT]
        for name in [*dirs, *files]:
            os.chown(Path(root, name), NOBODY, NOBODY, follow_symlinks=False)
    os.chown(workdir, NOBODY, NOBODY, follow_symlinks=False)


def take_back(workdir: Path) -> list[str]:
    """After the sandbox ended: remove what the bot must not follow (symlinks, fifos, devices:
    it later writes error.json and copies the workspace) and, as root, own it again."""
    notes: list[str] = []
    me = (os.getuid(), os.getgid())
    for root, dirs, files in os.walk(workdir, topdown=True):
        for name in [*dirs, *files]:
            path = Path(root, name)
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                kind = "symlink" if path.is_symlink() else "special file"
                notes.append(f"ignored {kind} {path.relative_to(workdir)} (removed)")
                path.unlink()
                if name in dirs:
                    dirs.remove(name)
            elif os.geteuid() == 0:
                os.chown(path, *me, follow_symlinks=False)
    if os.geteuid() == 0:
        os.chown(workdir, *me, follow_symlinks=False)
    return notes


def _interpreter_dirs(executable: str) -> list[Path]:
    """The prefixes an interpreter needs: a venv and its base Python (sys's for our own)."""
    exe = Path(executable)
    dirs = [exe.parent.parent, exe.resolve().parent.parent]
    ours = {Path(sys.executable).resolve(), Path(getattr(sys, "_base_executable", sys.executable)).resolve()}
    if exe.resolve() in ours:
        dirs += [Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique and not any(d.is_relative_to(u) for u in unique):
            unique = [u for u in unique if not u.is_relative_to(d)] + [d]
    return unique


def _covered(path: Path, dirs: Iterable[str]) -> bool:
    return any(path.is_relative_to(d) for d in dirs)


def _parents(path: Path, made: set[str]) -> list[str]:
    """Directories above a bind, traversable by the sandbox's user (bwrap makes them 0700)."""
    out: list[str] = []
    for parent in reversed(path.parents):
        if str(parent) not in made:
            out += ["--perms", "0755", "--dir", str(parent)]
            made.add(str(parent))
    return out


@functools.cache
def _util(name: str) -> str:
    found = shutil.which(name, path=os.defpath + ":/usr/sbin:/sbin")
    if found is None:
        raise ScriptProblem(messages.SANDBOX_MISSING.format(reason=f"{name} (util-linux) not found"))
    return found
