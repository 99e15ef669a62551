"""A sandbox per submission: bubblewrap where it works, resource limits always, never root, never capabilities.

With bubblewrap (`bwrap`, Debian's `bubblewrap` package) the submission's kernel sees a read-only system
(/usr, /etc, this Python and its packages, and the course_lib package folder only, bound at LIB_MOUNT, not
the repository around it: no assignments/, no grading bundles), a private /tmp of limited size (HOME,
IPYTHONDIR and Jupyter's runtime folder are in it), no network (a loopback of its own), its own PID, IPC and
UTS namespaces, and exactly two writable places: the copy of the submission (/submission, the kernel's working
directory) and the folder the checker reads the results from (/grading/out). The checker's inputs are mounted
read-only at /grading/in. Other submissions, the output folder and the original files do not exist in there.
Everything in the sandbox is killed when the grader's worker dies or is done with it (`--die-with-parent`, PID
namespace).

Nothing a student controls ever runs as root or with a capability:

- when the grader runs as root, bwrap (root, no user namespace: it needs root to set up the mounts) execs
  util-linux's `setpriv`, which drops to the submission's own unprivileged uid and gid, clears the
  supplementary groups, the inheritable and bounding capability sets and sets no_new_privs, and only then
  execs Python: from the first Python instruction on, the process has uid != 0 and CapEff == 0 (the kernel
  clears the permitted and effective sets when every uid becomes non-zero). `detect` checks exactly that from
  inside a probe sandbox, and refuses the sandbox otherwise;
- without root, bwrap's own user namespace maps the grader's uid, with every capability dropped;
- Python starts isolated (`-I`: no PYTHONPATH, no user site, and neither the working directory nor a script's
  folder on sys.path) in the fixed working directory "/", and the course_lib package comes from a path the
  grader controls (`python_command`): no file of a submission can shadow a module the runner imports. The
  kernel itself runs in /submission: a student's module there is the student's own code, in the sandbox.

The uids come from a block reserved for this grader run (`reserve_uids`: a lock file per block, held for the
whole run, in a root-owned folder), one per worker slot, so that the process limit (RLIMIT_NPROC, counted per
uid) counts this submission's processes only, no concurrent run on the same machine shares a uid, and the
kernel cannot write anything root owns. Limits per process (RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC,
RLIMIT_CORE) are set before the sandbox starts; the worker also watches the size of the submission's folder
and the wall clock from outside. Where the grader may create memory cgroups (`cgroup`), the whole sandbox runs
in one of its own (named after the run's pid and the submission's private folder), which limits the memory of
all its processes together (its /tmp included); elsewhere RLIMIT_AS, per process, is the only memory limit.

Without bubblewrap (`mode == "none"`) the kernel runs as a plain subprocess in its own session with the
same limits and private HOME/IPYTHONDIR/TMPDIR (as root: dropped to the slot's uid the same way), but it can
read and write everything that user can: the grader then says so loudly in the summary.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

IO_MOUNT, WORK_MOUNT = "/grading", "/submission"
LIB_MOUNT = "/opt/course-lib-grading"  # the course_lib package is bound read-only at LIB_MOUNT/course_lib
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # where the tools are looked up
# Sandbox uids when the grader runs as root: UIDS_PER_RUN consecutive uids (one per worker slot) per grader run,
# in a block of its own. High above any real user where this machine's uid map allows; otherwise (a user
# namespace of 65,536 uids, as in many containers) in 61000-65095, below "nobody".
UIDS_PER_RUN = 256
HIGH_UID_BASE, HIGH_UID_BLOCKS = 1_800_000_000, 1024
LOW_UID_BASE, LOW_UID_BLOCKS = 61_000, 16
LOCK_FOLDERS = ("/run/course-lib-grading", "/var/lock/course-lib-grading")
# A tiny program in place of `-m`: put the folder holding course_lib first on sys.path (python -I ignores
# PYTHONPATH and puts neither the working directory nor a script's folder there), then run MODULE.main(ARGS).
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); import importlib; "
    "sys.exit(importlib.import_module(sys.argv[2]).main(sys.argv[3:]))"
)


@dataclass
class Limits:
    memory_gb: float = 6.0  # address space per process (torch alone reserves about 3 GB)
    ram_gb: float = 4.0  # memory of all the submission's processes together, its /tmp included (a memory cgroup)
    file_gb: float = 1.0  # largest file a submission may write
    processes: int = 256  # processes per submission (effective when the grader runs as root)
    tmp_mb: int = 1024  # the private /tmp (a tmpfs, so it is memory)
    folder_gb: float = 4.0  # all files in the submission's folder together, watched from outside


def package_dir() -> Path:
    """The folder of the course_lib package this process runs (a worktree's, an installed one)."""
    import course_lib

    return Path(course_lib.__file__).resolve().parent


def library_dir(folder: Path) -> Path:
    """folder/lib holding only a link `course_lib` to package_dir(): the one place on a worker's (and an unsandboxed
    runner's) sys.path that is not the interpreter's own, in a folder the grader made."""
    lib = folder / "lib"
    lib.mkdir(mode=0o755, exist_ok=True)
    link = lib / "course_lib"
    if not link.is_symlink():
        link.symlink_to(package_dir(), target_is_directory=True)
    return lib


def python_command(lib: str | os.PathLike, module: str, *args: str) -> list[str]:
    """This Python, isolated (-I), running module.main(args) with course_lib from lib (see BOOT)."""
    return [sys.executable, "-I", "-c", BOOT, str(lib), module, *args]


def tool(name: str) -> str:
    """The absolute path of a system tool, looked up in SYSTEM_PATH only (never the caller's PATH or folder)."""
    found = shutil.which(name, path=SYSTEM_PATH)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (looked in {SYSTEM_PATH})")
    return found


def drop_command(uid: int, gid: int) -> list[str]:
    """util-linux's setpriv in front of a command: it runs as uid/gid with no supplementary group, no capability
    (inheritable and bounding sets cleared; the kernel clears the others at the uid change) and no_new_privs."""
    return [
        tool("setpriv"),
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def unreachable_for_others() -> list[str]:
    """The folders on the way to this Python and course_lib that a user other than their owner cannot get through
    (e.g. /root, mode 0700): without bubblewrap's binds, a dropped uid could not start the runner."""
    needed = {Path(sys.executable), package_dir(), *(Path(p) for p in site.getsitepackages())}
    blocked = set()
    for path in needed:
        for folder in [*reversed(path.parents), path]:
            try:
                if folder.is_dir() and not os.stat(folder).st_mode & 0o001:
                    blocked.add(str(folder))
            except OSError:
                continue
    return sorted(blocked)


def _python_paths() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for p in site.getsitepackages() + [site.getusersitepackages()]:
        if os.path.isdir(p):
            paths.add(p)
    paths = sorted(p for p in paths if os.path.isdir(p) and not p.startswith("/usr/"))
    # Keep the outermost folders only (bwrap binds each one; a nested bind would be redundant).
    return [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def bwrap_args(
    io_dir: Path, work_dir: Path, env: dict, limits: Limits, as_root: bool, extra_read_only: tuple[str, ...] = ()
) -> list[str]:
    """The bwrap command line, up to (not including) the command to run (as_root: `drop_command` comes next)."""
    args = [
        tool("bwrap"),
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "grading",
    ]
    if not as_root:
        args += ["--unshare-user", "--cap-drop", "ALL"]
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # The private /tmp first: Python or course_lib may live under /tmp (a checkout there, an editable
    # install), and their read-only binds below must be mounted on top of it, not hidden by it.
    # World-writable and sticky, like a system's /tmp: the sandbox's uid makes its HOME there.
    args += ["--dev", "/dev", "--proc", "/proc", "--size", str(limits.tmp_mb * 1024 * 1024)]
    args += ["--perms", "1777", "--tmpfs", "/tmp"]
    made: set[str] = {"/tmp"}
    binds = [(p, p) for p in _python_paths() + [p for p in extra_read_only if os.path.exists(p)]]
    binds.append((str(package_dir()), f"{LIB_MOUNT}/course_lib"))
    for source, path in binds:
        # bwrap would create the folders above a mount point as root-only (0700): the unprivileged uid could not
        # get through them, so they are made first, traversable (they hold nothing but the mount point).
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made and not str(parent).startswith(("/usr", "/etc")):
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", source, path]
    args += [
        "--perms",
        "0755",
        "--dir",
        IO_MOUNT,
        "--ro-bind",
        str(io_dir / "in"),
        f"{IO_MOUNT}/in",
        "--bind",
        str(io_dir / "out"),
        f"{IO_MOUNT}/out",
        "--bind",
        str(work_dir),
        WORK_MOUNT,
        "--chdir",
        "/",  # the runner's working directory holds no student file (the kernel's is WORK_MOUNT)
        "--clearenv",
    ]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def sandbox_env(fast: bool | None, io_path: str, home: str, extra: dict | None = None, lib: str = LIB_MOUNT) -> dict:
    """The kernel's whole environment (nothing of the grader's, e.g. no credentials in variables). PYTHONPATH is
    for the kernel (which imports course_lib.grading.collect); the runner itself starts with -I and ignores it."""
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": str(lib),
        "HOME": f"{home}/home",
        "TMPDIR": home,
        "IPYTHONDIR": f"{home}/ipython",
        "JUPYTER_RUNTIME_DIR": f"{home}/jupyter-runtime",
        "JUPYTER_CONFIG_DIR": f"{home}/jupyter-config",
        "JUPYTER_DATA_DIR": f"{home}/jupyter-data",
        "MPLCONFIGDIR": f"{home}/matplotlib",
        "COURSE_LIB_CACHE": f"{home}/course_lib-cache",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "COURSE_LIB_GRADING_IO": io_path,
    }
    if os.environ.get("COURSE_LIB_DATA"):
        env["COURSE_LIB_DATA"] = os.environ["COURSE_LIB_DATA"]
    if fast is not None:
        env["COURSE_LIB_FAST"] = "1" if fast else "0"
    elif os.environ.get("COURSE_LIB_FAST"):
        env["COURSE_LIB_FAST"] = os.environ["COURSE_LIB_FAST"]
    env.update(extra or {})
    return env


def limit_command(limits: Limits, processes: bool) -> list[str]:
    """util-linux's prlimit in front of a command: its limits are set before it runs, and inherited by every
    process it starts (no Python code runs between fork and exec)."""
    gb = 1024**3
    cmd = [tool("prlimit"), f"--as={int(limits.memory_gb * gb)}", f"--fsize={int(limits.file_gb * gb)}", "--core=0"]
    if processes:
        cmd.append(f"--nproc={limits.processes}")
    return cmd + ["--"]


# jsonschema (which nbformat imports) imports rfc3987_syntax where it is installed, and that builds a grammar at
# import: about 2 s of CPU on the course's machine, in every sandbox's runner, for a string format ("iri") that no
# notebook schema uses and nbformat never checks (it validates without a format checker).
SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Make the optional modules in SLOW_OPTIONAL_MODULES unimportable in this process (None in sys.modules: their
    importers fall back as without them), unless already imported. For the grader's own processes only."""
    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); import course_lib.grading.collect, os; "
    "open('/tmp/probe', 'w').write('x'); "
    "status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line); "
    "print('uid', os.getuid(), os.geteuid(), 'capeff', int(status['CapEff'], 16), 'capbnd', int(status['CapBnd'], 16))"
)
PROBE_UID = LOW_UID_BASE - 1  # the uid of detect's probe sandbox (it holds no submission)


def _probe(mode: str) -> str:
    """ "" when a sandbox of this mode works here and its Python has no privilege at all, else why not."""
    import tempfile

    as_root = mode == "bwrap-root"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "io" / "in").mkdir(parents=True)
        (Path(tmp) / "io" / "out").mkdir()
        (Path(tmp) / "work").mkdir()
        try:
            args = bwrap_args(
                Path(tmp) / "io", Path(tmp) / "work", {"PATH": "/usr/bin:/bin"}, Limits(), as_root=as_root
            )
            if as_root:
                args += drop_command(PROBE_UID, PROBE_UID)
            done = subprocess.run(
                args + [sys.executable, "-I", "-c", _PROBE, LIB_MOUNT],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                cwd="/",
                env={"PATH": SYSTEM_PATH},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{type(exc).__name__}: {exc}"
        if done.returncode != 0:
            return (done.stderr.strip().splitlines() or ["failed"])[-1]
        words = done.stdout.split()
        try:
            uid, euid, capeff = int(words[1]), int(words[2]), int(words[4])
        except (IndexError, ValueError):
            return f"the probe printed {done.stdout.strip()[:200]!r}"
        if capeff != 0 or (as_root and 0 in (uid, euid)):
            return f"the sandboxed process kept privileges (uid {uid}, CapEff {capeff:x})"
    return ""


@functools.cache
def detect() -> tuple[str, str]:
    """(mode, why): "bwrap-root" (root: namespaces without a user namespace, then setpriv to an unprivileged uid
    without capabilities), "bwrap-user" (an unprivileged user namespace, the grader is not root) or "none", with
    the reason when it is "none". Root never uses a user namespace: bwrap would map the sandbox to uid 0."""
    if os.environ.get("COURSE_LIB_GRADING_SANDBOX", "").lower() in ("0", "off", "none", "no"):
        return "none", "turned off by COURSE_LIB_GRADING_SANDBOX=off"
    if sys.platform != "linux":
        return "none", f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap", path=SYSTEM_PATH) is None:
        return "none", "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if os.geteuid() == 0 and shutil.which("setpriv", path=SYSTEM_PATH) is None:
        return "none", "setpriv (util-linux) is not installed; as root it is what drops the sandbox's privileges"
    mode = "bwrap-root" if os.geteuid() == 0 else "bwrap-user"
    why = _probe(mode)
    if not why:
        return mode, ""
    return "none", f"bubblewrap is installed but cannot create a sandbox here ({why})"


# ------------------------------------------------------------------------------ uids per grader run
def _uid_base() -> tuple[int, int]:
    """(first uid, number of blocks): the high range where this process's uid map holds it, else the low one."""
    needed = HIGH_UID_BLOCKS * UIDS_PER_RUN
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _outside, count = (int(x) for x in line.split())
            if inside <= HIGH_UID_BASE and HIGH_UID_BASE + needed <= inside + count:
                return HIGH_UID_BASE, HIGH_UID_BLOCKS
    except (OSError, ValueError):
        pass
    return LOW_UID_BASE, LOW_UID_BLOCKS


def _uids_running() -> set[int]:
    """The real uids of every process on this machine (of this PID namespace)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        found.add(int(line.split()[1]))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


def _lock_folder() -> Path:
    """A folder only root may write, for the uid blocks' lock files (made when missing)."""
    import stat

    reasons = []
    for candidate in LOCK_FOLDERS:
        folder = Path(candidate)
        try:
            folder.mkdir(mode=0o755, exist_ok=True)
            info = os.lstat(folder)
        except OSError as exc:
            reasons.append(f"{folder}: {exc.strerror}")
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
            return folder
        reasons.append(f"{folder} is not a folder only root may write")
    raise OSError("no folder for the sandbox uids' lock files: " + "; ".join(reasons))


@dataclass
class UidBlock:
    """The uids of one grader run: first + slot for slot < size, reserved while the lock file descriptor is open."""

    first: int
    size: int
    lock_fd: int | None = None

    def uid(self, slot: int) -> int:
        if not 0 <= slot < self.size:
            raise ValueError(f"slot {slot} is outside this run's {self.size} sandbox uids")
        return self.first + slot

    def release(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)  # closing the descriptor drops the flock
            self.lock_fd = None


def reserve_uids(workers: int) -> UidBlock:
    """A block of UIDS_PER_RUN sandbox uids no other grader run holds (a flock on its lock file, which the kernel
    drops when this process ends, however it ends) and no process is running as. OSError when there is none."""
    import fcntl

    if workers > UIDS_PER_RUN:
        raise ValueError(f"at most {UIDS_PER_RUN} workers (sandbox uids per run), got {workers}")
    base, blocks = _uid_base()
    folder = _lock_folder()
    running = _uids_running()
    start = os.getpid() % blocks
    for i in range(blocks):
        block = (start + i) % blocks
        first = base + block * UIDS_PER_RUN
        fd = os.open(folder / f"uids-{first}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if any(first <= uid < first + UIDS_PER_RUN for uid in running):  # left over from a run that was killed
            os.close(fd)
            continue
        return UidBlock(first, UIDS_PER_RUN, fd)
    raise OSError(f"all {blocks} blocks of sandbox uids are held by other grader runs or their processes")


def kill_tagged(token: str) -> int:
    """SIGKILL every process whose environment holds token (the no-sandbox fallback's cleanup). Returns the count."""
    needle = token.encode()
    killed = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read():
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


def kill_uid(uid: int) -> int:
    """SIGKILL every process whose real uid is uid (a sandbox uid of this run, as root). Returns the count."""
    killed = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                real = next((int(line.split()[1]) for line in f if line.startswith("Uid:")), None)
            if real == uid:
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError, IndexError):
            continue
    return killed


def with_group_killed(proc: subprocess.Popen) -> None:
    """SIGKILL the process group (the sandbox; with bwrap its PID namespace dies with it) and reap."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
