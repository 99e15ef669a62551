"""Rebuild the submission fixtures in tests/fixtures/grading/ from the assignments' source notebooks.

    python scripts/make_grading_fixtures.py

For each assignment, `reference` is what a student who solved everything would hand in (the student
version with the solutions filled in) and `untouched` is the student version as released. For
assignment 2 (the fastest to run) there are also the other kinds of submission the grader must survive:
a partly wrong one, one that raises, one that loops forever, one that is not valid JSON, one that edits
read-only test cells, one that deletes cells and one that prints megabytes. For assignment 3, one reports
hand-typed scores and one deletes its checkpoints after scoring. tests/test_grading_assignments.py
states the score each must get.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.grading import markup  # noqa: E402 - after the sys.path line, so the checkout is imported
from course_lib.grading.assign import student_notebook  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "grading"
ASSIGNMENTS = {
    "01_dcgan_mnist": ROOT / "assignments" / "01_dcgan_mnist" / "source" / "01_dcgan_mnist.ipynb",
    "02_is_fid": ROOT / "assignments" / "02_is_fid" / "source" / "02_is_fid.ipynb",
    "03_improve_dcgan": ROOT / "assignments" / "03_improve_dcgan" / "source" / "03_improve_dcgan.ipynb",
    "04_wasserstein_lp": ROOT / "assignments" / "04_wasserstein_lp" / "source" / "04_wasserstein_lp.ipynb",
}


def solved(source_nb):
    """The student version with every solution filled in (marker lines dropped, hidden tests absent)."""
    nb = student_notebook(source_nb)
    for cell, src in zip(nb.cells, source_nb.cells):
        if markup.kind_of(src).solution:
            lines = markup.source_of(src).split("\n")
            cell.source = "\n".join(
                ln for ln in lines if markup.BEGIN_SOLUTION not in ln and markup.END_SOLUTION not in ln
            ).strip("\n")
    return nb


def cell_with(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if markup.grade_id_of(c) == grade_id)


def replaced(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells[cell_with(nb, grade_id)].source = source
    return nb


def prefixed(nb, grade_id: str, prefix: str):
    nb = copy.deepcopy(nb)
    cell = nb.cells[cell_with(nb, grade_id)]
    cell.source = prefix + "\n" + cell.source
    return nb


def without(nb, *grade_ids: str):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if markup.grade_id_of(c) not in grade_ids]
    return nb


def with_cell_after(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    nb.cells.insert(cell_with(nb, grade_id) + 1, nbformat.v4.new_code_cell(source))
    return nb


# A Fréchet distance that forgets the factor 2 in front of the trace term: right shape, wrong values.
FID_WITHOUT_2 = """def frechet_distance(mu1, sigma1, mu2, sigma2):
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - trace_root)"""


def fixtures_02(source_nb) -> dict:
    ref = solved(source_nb)
    wrong = replaced(ref, "frechet_distance", FID_WITHOUT_2)
    edits = copy.deepcopy(wrong)
    for gid in ("test_fid_visible", "test_fid_hidden"):
        edits.cells[cell_with(edits, gid)].source = "# this test is fine, trust me\npass"
    return {
        "reference": ref,
        "untouched": student_notebook(source_nb),
        "partly_wrong": wrong,
        "raises": prefixed(ref, "inception_score", 'raise RuntimeError("I gave up on this part")'),
        "loops": prefixed(ref, "fid_from_features", "while True:\n    pass"),
        "invalid_json": None,  # written below from the reference's text
        "edits_locked": edits,
        "deletes_cells": without(ref, "test_is_hidden", "test_fid_features"),
        "prints_megabytes": with_cell_after(ref, "inception_score", 'print("x" * 3_000_000)\nprint("done")'),
    }


# Assignment 3: numbers typed in by hand instead of computed from the checkpoints.
HAND_TYPED_SCORES = """SCORES = {"baseline": {"is": 6.12, "fid": 21.4},
          "improved": {"is": 8.35, "fid": 7.9}}"""


def fixtures_03(source_nb) -> dict:
    ref = solved(source_nb)
    no_checkpoints = with_cell_after(ref, "test_scores_table", 'import shutil\nshutil.rmtree("runs")')
    no_checkpoints.cells[cell_with(no_checkpoints, "test_scores_table") + 1].id = "delete-runs"  # stable, not random
    return {
        "reference": ref,
        "untouched": student_notebook(source_nb),
        "hand_typed": replaced(ref, "scores", HAND_TYPED_SCORES),
        # The runs are deleted after scoring ("to keep the upload small"): nothing to recompute from.
        "no_checkpoints": no_checkpoints,
    }


def main() -> None:
    for name, path in ASSIGNMENTS.items():
        if not path.is_file():
            print(f"skipping {name}: no source notebook at {path}")
            continue
        source_nb = nbformat.read(path, as_version=4)
        special = {"02_is_fid": fixtures_02, "03_improve_dcgan": fixtures_03}
        kinds = (
            special[name](source_nb)
            if name in special
            else {"reference": solved(source_nb), "untouched": student_notebook(source_nb)}
        )
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        for kind, nb in kinds.items():
            target = folder / f"{kind}.ipynb"
            if kind == "invalid_json":
                text = nbformat.writes(kinds["reference"])
                target.write_text(text[: len(text) // 2])  # cut off mid-file, as an interrupted upload would be
            else:
                target.write_text(nbformat.writes(nb) + "\n")
        print(f"{name}: wrote {', '.join(kinds)} to {folder}")


if __name__ == "__main__":
    main()
