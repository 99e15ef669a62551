"""Every dotted `course_lib.` name the prose mentions exists: README, docs/ (the measured reports in docs/results
included), configs/, notebooks and assignments. A module that was renamed or an attribute that moved fails here,
with the file that still names it (issue 34: a config cited `course_lib.training.tricks.PRESETS`)."""

import importlib
import re
from pathlib import Path

import course_lib

REPO = Path(course_lib.__file__).resolve().parents[1]
PLACES = ("docs", "configs", "notebooks", "solutions", "assignments")
SUFFIXES = {".md", ".json", ".yaml", ".yml", ".ipynb", ".txt", ".py"}
# A dotted name: course_lib.a.b.C, not part of a longer word, a path (course_lib/x) or a format tag (x/2).
DOTTED = re.compile(r"(?<![\w./-])course_lib(?:\.[A-Za-z_]\w*)+(?![\w/-])")


def mentioned_names() -> dict[str, set[str]]:
    files = [REPO / "README.md"] + [
        path
        for place in PLACES
        if (REPO / place).is_dir()
        for path in (REPO / place).rglob("*")
        if path.is_file() and path.suffix in SUFFIXES
    ]
    names: dict[str, set[str]] = {}
    for path in files:
        for match in DOTTED.finditer(path.read_text(errors="replace")):
            names.setdefault(match.group(0), set()).add(str(path.relative_to(REPO)))
    return names


def resolves(name: str) -> bool:
    """An importable module, or an attribute (chain) of the longest importable module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def test_the_scan_finds_the_references():
    names = mentioned_names()
    assert "course_lib.training.presets.PRESETS" in names and len(names) > 20
    assert "course_lib.training.tricks.PRESETS" not in names
    assert not resolves("course_lib.training.tricks.PRESETS") and not resolves("course_lib.training.TrainConfig.nope")


def test_every_mentioned_course_lib_name_resolves():
    stale = {name: sorted(where) for name, where in mentioned_names().items() if not resolves(name)}
    assert stale == {}, f"names that no longer exist, and where they are mentioned: {stale}"
