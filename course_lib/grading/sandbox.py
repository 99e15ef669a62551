"""A sandbox per submission: bubblewrap where it works, resource limits always.

With bubblewrap (`bwrap`, Debian's `bubblewrap` package) the submission's kernel sees a read-only system
(/usr, /etc, this Python and its packages, and the course_lib package folder only, not the repository
around it: no assignments/, no grading bundles), a private /tmp of limited size (HOME, IPYTHONDIR and
Jupyter's runtime folder are in it), no network (a loopback of its own), its own PID, IPC and UTS
namespaces, and exactly two writable places: the copy of the submission (/submission, the working
directory) and the folder the checker reads the results from (/grading/out). The checker's inputs are
mounted read-only at /grading/in. Other submissions, the output folder and the original files do not
exist in there. Everything in the sandbox is killed when the grader's worker dies or is done with it
(`--die-with-parent`, PID namespace).

When the grader runs as root, the sandbox drops to an unprivileged uid of its own per worker slot
(`SLOT_UID_BASE + slot`), so that the process limit counts this submission's processes only and the
kernel cannot write anything root owns. Limits per process (RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NPROC,
RLIMIT_CORE) are set before the sandbox starts; the worker also watches the size of the submission's
folder and the wall clock from outside. Where the grader may create memory cgroups (`cgroup`), the whole
sandbox runs in one of its own, which limits the memory of all its processes together (its /tmp included);
elsewhere RLIMIT_AS, per process, is the only memory limit.

Without bubblewrap (`mode == "none"`) the kernel runs as a plain subprocess in its own session with the
same limits and private HOME/IPYTHONDIR/TMPDIR, but it can read and write everything the grader's user
can: the grader then says so loudly in the summary.
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

SLOT_UID_BASE = 61000  # uids 61000.. are used for sandboxes when the grader runs as root
IO_MOUNT, WORK_MOUNT = "/grading", "/submission"


@dataclass
class Limits:
    memory_gb: float = 6.0  # address space per process (torch alone reserves about 3 GB)
    ram_gb: float = 4.0  # memory of all the submission's processes together, its /tmp included (a memory cgroup)
    file_gb: float = 1.0  # largest file a submission may write
    processes: int = 256  # processes per submission (effective when the grader runs as root)
    tmp_mb: int = 1024  # the private /tmp (a tmpfs, so it is memory)
    folder_gb: float = 4.0  # all files in the submission's folder together, watched from outside


def _python_paths() -> list[str]:
    import course_lib

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(course_lib.__file__).resolve().parent)}
    for p in site.getsitepackages() + [site.getusersitepackages()]:
        if os.path.isdir(p):
            paths.add(p)
    paths = sorted(p for p in paths if os.path.isdir(p) and not p.startswith("/usr/"))
    # Keep the outermost folders only (bwrap binds each one; a nested bind would be redundant).
    return [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]


def bwrap_args(
    io_dir: Path, work_dir: Path, env: dict, limits: Limits, as_root: bool, extra_read_only: tuple[str, ...] = ()
) -> list[str]:
    """The bwrap command line, up to (not including) the command to run."""
    args = [
        "bwrap",
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
        args.append("--unshare-user")
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # The private /tmp first: Python or course_lib may live under /tmp (a checkout there, an editable
    # install), and their read-only binds below must be mounted on top of it, not hidden by it.
    args += ["--dev", "/dev", "--proc", "/proc", "--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    made: set[str] = {"/tmp"}  # the tmpfs keeps its own sticky, world-writable mode
    for path in _python_paths() + [p for p in extra_read_only if os.path.exists(p)]:
        # bwrap would create the folders above a mount point as root-only (0700): the unprivileged uid could not
        # get through them, so they are made first, traversable (they hold nothing but the mount point).
        for parent in reversed(Path(path).parents[:-1]):
            if str(parent) not in made and not str(parent).startswith(("/usr", "/etc")):
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", path, path]
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
        WORK_MOUNT,
        "--clearenv",
    ]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def sandbox_env(fast: bool | None, io_path: str, home: str, extra: dict | None = None) -> dict:
    """The kernel's whole environment (nothing of the grader's, e.g. no credentials in variables)."""
    env = {
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
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
    cmd = ["prlimit", f"--as={int(limits.memory_gb * gb)}", f"--fsize={int(limits.file_gb * gb)}", "--core=0"]
    if processes:
        cmd.append(f"--nproc={limits.processes}")
    return cmd + ["--"]


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@functools.cache
def detect() -> tuple[str, str]:
    """(mode, why): "bwrap-root" (root: namespaces without a user namespace, then an unprivileged uid),
    "bwrap-user" (an unprivileged user namespace) or "none", with the reason when it is "none"."""
    if os.environ.get("COURSE_LIB_GRADING_SANDBOX", "").lower() in ("0", "off", "none", "no"):
        return "none", "turned off by COURSE_LIB_GRADING_SANDBOX=off"
    if sys.platform != "linux":
        return "none", f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return "none", "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    candidates = ["bwrap-root", "bwrap-user"] if os.geteuid() == 0 else ["bwrap-user"]
    why = ""
    for mode in candidates:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "io" / "in").mkdir(parents=True)
            (Path(tmp) / "io" / "out").mkdir()
            (Path(tmp) / "work").mkdir()
            args = bwrap_args(
                Path(tmp) / "io", Path(tmp) / "work", {"PATH": "/usr/bin:/bin"}, Limits(), as_root=mode == "bwrap-root"
            )
            try:
                done = subprocess.run(
                    args + [sys.executable, "-c", "import course_lib"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                why = f"{type(exc).__name__}: {exc}"
                continue
            if done.returncode == 0:
                return mode, ""
            why = (done.stderr.strip().splitlines() or ["failed"])[-1]
    return "none", f"bubblewrap is installed but cannot create a sandbox here ({why})"


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
