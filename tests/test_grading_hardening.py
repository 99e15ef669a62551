"""The grader's defences of issue 36 and issue 32 item 8 that need no sandbox, one function at a time.

The attacks themselves, in a class run with honest students, are in tests/test_grading_attacks.py (they need
bubblewrap); here each defence is checked directly and fast: trees of any depth are sized, copied and deleted
without recursion, a copy never writes past its budget and skips what is not a folder or a regular file,
every decode of kernel-made data is refused from its header or its counts before memory is allocated, names
become safe file names, option-like names need `--`, a check whose result has no truth value fails that
check only, and each grader run gets sandbox uids of its own.
"""

import importlib
import io
import json
import os
import resource
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from course_lib.grading import sandbox, trees, wire
from course_lib.grading.checks import _judged_by

grade = importlib.import_module("course_lib.grading.grade")  # the module (course_lib.grading.grade is the function)

DEPTH = 1_500  # the tree; os.walk and shutil.rmtree raise RecursionError on it


def _deep(folder: Path, depth: int, name: str = "d") -> None:
    """A chain of depth folders below folder (made relative to each other: deeper than PATH_MAX is fine)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            below = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)


def test_trees_of_any_depth_are_sized_copied_and_deleted_without_recursion(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hw.ipynb").write_text("{}")
    _deep(src, 3 * DEPTH)  # 4,500 levels: its paths are far longer than PATH_MAX
    size = trees.tree_size(src, max_depth=256)
    assert size.too_deep and not size.complete and size.entries >= 256
    copied = trees.copy_tree(src, tmp_path / "copy", 10**6)
    assert (tmp_path / "copy" / "hw.ipynb").read_text() == "{}"
    assert any("deeper than" in s for s in copied.skipped), copied.skipped
    assert trees.tree_size(tmp_path / "copy").entries <= trees.COPY_DEPTH + 2
    for folder in (src, tmp_path / "copy"):
        assert trees.remove_tree(folder) and not folder.exists()
    assert trees.remove_tree(tmp_path / "never-there")


def test_a_copy_skips_links_special_sparse_and_hard_linked_files_and_never_writes_past_its_budget(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hw.ipynb").write_text("{}")
    (src / "data.bin").write_bytes(b"x" * 5000)
    with open(src / "sparse.bin", "wb") as f:
        f.truncate(3 * 1024**3)  # 3 GiB that take no disk space: a copy would write them out in full
    os.mkfifo(src / "fifo")  # opening it would block the copy
    os.symlink("/etc/passwd", src / "link")
    os.link(src / "data.bin", src / "hard")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(src / "socket"))
    if os.geteuid() == 0:
        os.mknod(src / "zero", 0o666 | 0o020000, os.makedev(1, 5))  # /dev/zero: reading it never ends
    try:
        copied = trees.copy_tree(src, tmp_path / "copy", 10**6)
    finally:
        server.close()
    assert sorted(os.listdir(tmp_path / "copy")) == ["hw.ipynb"]  # data.bin has a second (hard) link
    notes = " ".join(copied.notes())
    for why in ("a sparse file", "a fifo", "a symbolic link", "a hard link", "a socket"):
        assert why in notes, notes
    assert "a device" in notes or os.geteuid() != 0
    assert trees.tree_size(tmp_path / "copy").allocated < 100_000
    os.unlink(src / "hard")
    with pytest.raises(trees.TooBig, match="more than"):
        trees.copy_tree(src, tmp_path / "small", 4000)  # data.bin alone is over the budget
    assert trees.tree_size(tmp_path / "small").apparent <= 4000


def test_a_stale_scratch_folder_with_a_deep_tree_never_stops_the_next_run(tmp_path):
    import tempfile

    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = Path(tempfile.gettempdir()) / f"course-lib-grade-{proc.pid}-teststale"
    if stale.exists():
        pytest.skip(f"{stale} exists")
    stale.mkdir()
    _deep(stale, DEPTH)
    grade._remove_stale_scratch()  # what every run does first
    assert not stale.exists()


def _npz(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _npy_header(shape, descr="<f8") -> bytes:
    """A real .npy (version 1.0) header, magic included, declaring shape and dtype."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_decoding_kernel_data_is_bounded_by_what_it_unpacks_to(tmp_path):
    # 285 MB of zeros declared and really there, deflated to a fraction of a MB (written a MB at a time, so that this
    # process's peak memory stays low until wire.read): refused from its header, just over the 256 MiB limit.
    (tmp_path / "zeros.json").write_text('{"__array__": "a0"}')
    with zipfile.ZipFile(tmp_path / "zeros.npz", "w", zipfile.ZIP_DEFLATED) as z, z.open("a0.npy", "w") as member:
        member.write(_npy_header((34 * 2**20,)))
        for _ in range(34 * 8):
            member.write(bytes(2**20))
    assert (tmp_path / "zeros.npz").stat().st_size < 1_000_000
    peak = _peak_mb()
    with pytest.raises(wire.WireError, match="would unpack to 285 MB"):
        wire.read(tmp_path / "zeros")
    # A header that declares 8 TB with no data at all.
    (tmp_path / "huge.json").write_text('{"__array__": "a0"}')
    (tmp_path / "huge.npz").write_bytes(_npz({"a0.npy": _npy_header((2**20, 2**20))}))
    with pytest.raises(wire.WireError, match="would unpack to"):
        wire.read(tmp_path / "huge")
    # Objects, strings and records are refused from the header too; so is a truncated array.
    for descr in ("|O", "<U10", [("a", "<f8")]):
        (tmp_path / "obj.json").write_text('{"__array__": "a0"}')
        (tmp_path / "obj.npz").write_bytes(_npz({"a0.npy": _npy_header((2,), descr) + b"\0" * 160}))
        with pytest.raises(wire.WireError, match="numbers and booleans only"):
            wire.read(tmp_path / "obj")
    (tmp_path / "short.json").write_text('{"__array__": "a0"}')
    (tmp_path / "short.npz").write_bytes(_npz({"a0.npy": _npy_header((100,)) + b"\0" * 80}))
    with pytest.raises(wire.WireError, match="truncated"):
        wire.read(tmp_path / "short")
    # JSON: 12 MB of nested empty lists would take 20 times that as Python objects; deep nesting; size.
    (tmp_path / "lists.json").write_text("[" + "[]," * 4_000_000 + "[]]")
    np.savez(tmp_path / "lists.npz")
    with pytest.raises(wire.WireError, match="values, over the limit"):
        wire.read(tmp_path / "lists")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    np.savez(tmp_path / "deep.npz")
    with pytest.raises(wire.WireError, match="nested"):
        wire.read(tmp_path / "deep")
    with pytest.raises(wire.WireError, match="MB limit"):
        wire.read(tmp_path / "lists", max_bytes=1_000_000)
    # A notebook of nested empty lists, too many cells, too many outputs.
    bomb = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "x": [' + b"[]," * 2_000_000 + b"[]]}"
    with pytest.raises(wire.WireError, match="values, over the limit"):
        wire.load_notebook(bomb)
    cells = json.dumps({"cells": [{"cell_type": "markdown", "source": "", "metadata": {}}] * 6000})
    with pytest.raises(wire.WireError, match="6,000 cells"):
        wire.load_notebook(cells.encode())
    outputs = {"cell_type": "code", "source": "", "metadata": {}, "outputs": [{}] * 3000, "execution_count": None}
    with pytest.raises(wire.WireError, match="3,000 outputs"):
        wire.load_notebook(json.dumps({"cells": [outputs]}).encode())
    assert _peak_mb() - peak < 150, "a refused decode allocated what it declared"
    # What the grader sends and gets back still round-trips, Fortran-ordered arrays included; so does a real header.
    assert np.lib.format.read_array(io.BytesIO(_npy_header((2,)) + bytes(16))).tolist() == [0.0, 0.0]
    data = [np.asfortranarray(np.arange(12.0).reshape(3, 4)), np.array(True), {"k": (1, np.int8(3))}]
    wire.write(tmp_path / "ok", data)
    back = wire.read(tmp_path / "ok")
    assert np.array_equal(back[0], data[0]) and back[1].shape == () and back[2]["k"][1] == 3


def test_submission_names_become_safe_distinct_file_names():
    names = ["alice", "-rf", "--total-timeout=3", "evil\nname,1,11", ".hidden", "a b", "a_b", "..", "x/../y", ""]
    stems = [grade.file_stem(n) for n in names]
    assert stems[0] == "alice" and grade.file_stem("a_b") == "a_b"
    assert len(set(stems)) == len(stems)
    for stem in stems:
        assert stem[0] not in "-." and "/" not in stem and "\n" not in stem and len(stem) <= 110, stem


def test_symlinked_submissions_are_refused_and_keep_their_own_name(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "hw.ipynb").write_text("{}")
    (tmp_path / "bob").symlink_to("alice")
    (tmp_path / "carol.ipynb").symlink_to("/etc/passwd")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    subs = grade.collect_submissions([tmp_path / n for n in ("alice", "bob", "carol.ipynb", "dangling")], "hw.ipynb")
    assert [s for _, s in subs] == ["alice", "bob", "carol", "dangling"]
    refused = {s: grade.refusal(p, "hw.ipynb") for p, s in subs}
    assert refused["alice"] is None
    for who in ("bob", "carol", "dangling"):
        assert "is a symbolic link" in refused[who], who
    assert "symbolic link" in grade.refusal(tmp_path / "bob" / "hw.ipynb", "hw.ipynb")


def test_option_like_names_need_double_dash(tmp_path, monkeypatch, capsys):
    from course_lib.cli.main import main

    (tmp_path / "--total-timeout=3").mkdir()
    (tmp_path / "alice").mkdir()
    monkeypatch.chdir(tmp_path)
    seen = []

    def graded(subs, assignment, out, **settings):  # what cli.run_grade hands to grade()
        seen.append((list(subs), settings))
        Path(out).mkdir()
        (Path(out) / "summary.json").write_text('{"warning": ""}')
        return []

    monkeypatch.setattr(grade, "grade", graded)
    options = ["--assignment", "x", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_:
        main(["grade", *sorted(os.listdir(tmp_path)), *options])  # what `course-lib grade * ...` runs
    assert exit_.value.code == 2 and "after `--`" in capsys.readouterr().err
    assert main(["grade", *options, "-1"]) == 2 and "starts with '-'" in capsys.readouterr().err
    assert seen == [] and not (tmp_path / "out").exists()
    main(["grade", *options, "--", *sorted(os.listdir(tmp_path))])
    assert seen[0][0] == ["--total-timeout=3", "alice"] and seen[0][1]["total_timeout"] is None


def test_a_check_whose_result_has_no_truth_value_fails_that_check_only():
    judge = _judged_by(lambda out, x: np.asarray(out) > x, [(0.5,), (0.5,)], True)
    why = judge([1.0, 0.0], 0)  # a two-element array: bool() raises ValueError
    assert why.startswith("the check could not use the result (ValueError"), why
    assert judge(1.0, 1) is None and judge(0.0, 1) == "the check failed"


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are reserved when the grader runs as root")
def test_each_grader_run_reserves_uids_of_its_own():
    hold = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from course_lib.grading import sandbox; "
        "block = sandbox.reserve_uids(4); print(block.first, flush=True); time.sleep(30)"
    )
    root = str(Path(sandbox.__file__).resolve().parents[2])
    other = subprocess.Popen([sys.executable, "-I", "-c", hold, root], stdout=subprocess.PIPE, text=True)
    try:
        theirs = int(other.stdout.readline())
        mine = sandbox.reserve_uids(4)
        try:
            assert abs(mine.first - theirs) >= sandbox.UIDS_PER_RUN and mine.uid(3) == mine.first + 3
            with pytest.raises(ValueError):
                mine.uid(sandbox.UIDS_PER_RUN)
        finally:
            mine.release()
    finally:
        other.kill()
        other.wait()
    again = sandbox.reserve_uids(1)  # the killed holder's lock went with it
    again.release()


def test_the_runner_refuses_to_run_with_privileges(tmp_path):
    from course_lib.grading import runner

    uid, capabilities = runner.privileges()
    if uid != 0 and not capabilities:
        pytest.skip("this test process has no privileges to refuse")
    assert runner.main([str(tmp_path)]) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="what root does without bubblewrap")
def test_without_a_sandbox_root_still_never_runs_student_code_as_root(tmp_path):
    import nbformat

    from course_lib.grading.markup import AssignmentError

    root = Path(__file__).resolve().parents[1]
    blank = nbformat.read(root / "assignments/04_wasserstein_lp/student/04_wasserstein_lp.ipynb", as_version=4)
    blank.cells.append(nbformat.v4.new_code_cell("import os\nprint('UID', os.getuid())"))
    nbformat.write(blank, tmp_path / "who.ipynb")
    args = ([tmp_path / "who.ipynb"], "04_wasserstein_lp", tmp_path / "out")
    settings = {"sandbox_mode": "none", "fast": True, "progress": False, "workers": 1}
    if sandbox.unreachable_for_others():  # e.g. this Python under /root: no other uid could start it
        with pytest.raises(AssignmentError, match="runs as an unprivileged uid"):
            grade.grade(*args, **settings)
        assert not (tmp_path / "out").exists()
        return
    (result,) = grade.grade(*args, **settings)
    printed = (tmp_path / "out" / "executed" / "who.ipynb").read_text()
    assert result.points == 0 and "UID 0" not in printed and "UID " in printed


def test_the_worker_never_imports_a_module_a_submission_names(tmp_path, monkeypatch):
    """Assignment 3's records carry a student's settings: inside the grading worker a loss term, callback or metric
    named `module:Class` is refused before anything is imported; registered names still work."""
    import json

    from course_lib.core.errors import ConfigError
    from course_lib.grading import worker
    from course_lib.grading.results import SubmissionResult
    from course_lib.training import TrainConfig

    seen = {}

    def grade_one(job):
        with pytest.raises(ConfigError, match="may not name a module to import") as refused:
            TrainConfig.from_dict({"loss": {"terms": [{"name": "not_yet_imported_module:Thing"}]}})
        seen["refused"] = str(refused.value)
        seen["registered"] = TrainConfig.from_dict({"preset": "r1"}).loss.terms
        return SubmissionResult(job["student"], job["submission"])

    monkeypatch.setattr(worker, "grade_one", grade_one)
    job = {"student": "s", "submission": "s.ipynb", "result": str(tmp_path / "result.json")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert worker.main([str(tmp_path / "job.json")]) == 0
    assert "not_yet_imported_module" not in sys.modules and seen["registered"][0]["name"] == "r1"
    assert json.loads((tmp_path / "result.json").read_text())["student"] == "s"
    TrainConfig.from_dict({"loss": {"terms": [{"name": "user_extensions:OrthogonalWeights"}]}})  # allowed again
