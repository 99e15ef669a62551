"""What a student gets back, made so that nothing in it can be forged or carry a hidden test's inputs (issue 32).

The grader's notes cannot be forged. Each note is an output the grader writes itself, listed in its cell's
metadata (`{"course_lib": {"grader_outputs": [indices]}}`); no metadata of the submission's survives and its
outputs are rebuilt from scratch, so only the grader's outputs are listed there. Notes go where no student code
runs: the output of a test cell (the kernel only ever sees `collect.run` there) and, after a code cell that ran
past its limit, a note the grader adds. In the submission's outputs every line that reads like the grader's marker (after Unicode
normalisation, without invisible characters, in any case) is prefixed with `[from the submission]`, and only
plain text and PNG/JPEG images are kept: no HTML, markdown, SVG or JavaScript from a submission can render as
the grader's.

Hidden tests' inputs never reach the student. The kernel can read them (its answers are called with them, and the
files are in its sandbox), so anything it printed, displayed, raised or returned may hold them. Where an
assignment has hidden checks, the student's copy (`student_copy`, OUT/feedback/STUDENT.ipynb) therefore keeps
none of the outputs of the student's code (a cell that raised says only the exception's class), and the feedback
keeps none of the kernel's text (`kernel_text_for_student`, `detail_for_student`: exception classes and
"wrong", never messages or values). The instructor's copy (OUT/executed/STUDENT.ipynb) keeps every output.
Students see the visible checks' details by running the test cells in their own notebook.
"""

from __future__ import annotations

import builtins
import re
import unicodedata

MARKER = "[course-lib grade]"
PRINTED = "[from the submission] "
KEPT_MIMES = ("text/plain", "image/png", "image/jpeg")
WITHHELD = (
    "The outputs of your code are not returned for this assignment: it has hidden tests, whose inputs your code "
    "could print. Run the notebook yourself to see them."
)
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_RAISED = re.compile(r"^(.*?) raised ([^:]{1,200})(?::.*)?$", re.S)
# The exception classes named to a student: a class name is the kernel's text too (type("7919_25", ...) is one).
KNOWN_EXCEPTIONS = {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
} | {"LinAlgError", "OutOfMemoryError"}
_CASE = re.compile(r"^(case \d+): ")
_MARKER_SKELETON = "courselibgrade"
NOT_RETURNED = "(its message is not returned: this assignment has hidden tests)"


def _text(value) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _skeleton(line: str) -> str:
    """A line as a reader sees it: compatibility-normalised, invisible characters gone, lower case, letters only."""
    line = unicodedata.normalize("NFKC", line)
    return "".join(ch for ch in line.casefold() if ch.isalnum())


def defuse(text) -> str:
    """The submission's text with every line that could pass for a grader's note prefixed as the submission's."""
    lines = _text(text).split("\n")
    return "\n".join(PRINTED + line if _MARKER_SKELETON in _skeleton(line) else line for line in lines)


def add_grader_output(cell, text: str, name: str = "stdout", at: int | None = None) -> None:
    """Add an output only the grader writes: a stream (nbformat allows no metadata on one) whose index goes into the
    cell's metadata, `{"course_lib": {"grader_outputs": [...]}}`, which no submission's metadata survives into."""
    from nbformat.v4 import new_output

    outputs = cell.setdefault("outputs", [])
    at = len(outputs) if at is None else at
    marked = [i + (i >= at) for i in grader_indices(cell)]
    outputs.insert(at, new_output("stream", name=name, text=text))
    own = cell.setdefault("metadata", {}).setdefault("course_lib", {})
    own["grader_outputs"] = sorted([*marked, at])


def grader_indices(cell) -> list[int]:
    own = cell.get("metadata", {}).get("course_lib") if isinstance(cell.get("metadata"), dict) else None
    found = own.get("grader_outputs", []) if isinstance(own, dict) else []
    n = len(cell.get("outputs") or [])
    return [i for i in found if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n]


def is_grader_output(cell, index: int) -> bool:
    return index in grader_indices(cell)


def clean_output(out):
    """One output of the submission rebuilt from plain data: stream, error, or display with text/plain and PNG/JPEG
    only; every text defused. None for anything else."""
    from nbformat.v4 import new_output

    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream":
        return new_output(
            "stream", name="stderr" if out.get("name") == "stderr" else "stdout", text=defuse(out.get("text"))
        )
    if kind == "error":
        trace = out.get("traceback") if isinstance(out.get("traceback"), list) else []
        return new_output(
            "error",
            ename=defuse(out.get("ename"))[:200],
            evalue=defuse(out.get("evalue"))[:2000],
            traceback=[defuse(line)[:2000] for line in trace[:100]],
        )
    if kind in ("display_data", "execute_result"):
        data = out.get("data") if isinstance(out.get("data"), dict) else {}
        kept = {}
        for mime in KEPT_MIMES:
            if mime in data:
                value = _text(data[mime])
                if mime == "text/plain":
                    kept[mime] = defuse(value)
                elif _BASE64.match(value):
                    kept[mime] = value
        return new_output("display_data", data=kept) if kept else None
    return None


def clean_outputs(outputs) -> list:
    return [o for o in map(clean_output, outputs if isinstance(outputs, list) else []) if o is not None]


# The runner's own events, as execute.py words them: returned as they are when they match exactly, for a cell the
# grader named (the runner's report sits where the kernel can write, so the numbers are all a forged one carries).
_RUNNER_EVENTS = re.compile(
    r"^(?P<label>.{1,120}?)(?: ran for more than \d{1,6} s \(the time limit per cell\) and was stopped"
    r"| stopped when the submission's total time limit \(\d{1,6} s\) was reached"
    r"|: the kernel died while running this cell \(exit\(\), a crash or out of memory\)"
    r"| printed \d{1,6}\.\d MB of output; only the first [\d,]{1,12} characters were kept)$"
)
_FIXED_EVENTS = {"the kernel was restarted; the cells after it ran without the variables defined before"}


def kernel_text_for_student(text: str, labels: set[str] = frozenset()) -> str:
    """Kernel-made text (an event, an error) as a student of an assignment with hidden checks may see it: who raised
    which exception, never its message; the runner's own events (time limits, output dropped, the kernel died or
    restarted) for a cell in `labels` as they are."""
    text = str(text)
    runner = _RUNNER_EVENTS.match(text)
    if text in _FIXED_EVENTS or (runner and runner["label"] in labels):
        return text
    match = _RAISED.match(text)
    if match and match[1] in labels:
        return f"{match[1]} raised {exception_name(match[2])} {NOT_RETURNED}"
    return "a message from running your code (not returned: this assignment has hidden tests)"


def cell_error_for_student(label: str, error: str) -> str:
    """The error the runner recorded for a test cell, as a student of an assignment with hidden checks may see it."""
    for event in (f"{label} {error}", f"{label}: {error}"):
        match = _RUNNER_EVENTS.match(event)
        if match and match["label"] == label:
            return error
    return f"raised {exception_name(error.split(':', 1)[0])} {NOT_RETURNED}"


def exception_name(name: str) -> str:
    """A kernel's exception class as a student may read it: a built-in one's name, else "an exception"."""
    name = str(name).strip().rsplit(".", 1)[-1]
    return name if name in KNOWN_EXCEPTIONS else "an exception"


def detail_for_student(line: str) -> str:
    """A failed visible case's line without anything the kernel returned (values, messages): with hidden checks
    those could be a hidden test's inputs."""
    case = _CASE.match(line)
    label = case[1] if case else "the answer"
    raised = re.search(r" raised ([A-Za-z_][\w.]{0,79})", line)
    return f"{label}: raised {exception_name(raised[1])}" if raised else f"{label}: wrong"


def _withhold(cell) -> None:
    """The student's outputs of a cell when they are not returned: the grader's own notes, and the class of an
    exception."""
    outputs = cell.get("outputs") or []
    mine = set(grader_indices(cell))
    error = next((o for i, o in enumerate(outputs) if i not in mine and o.get("output_type") == "error"), None)
    cell.outputs = [o for i, o in enumerate(outputs) if i in mine]
    cell.metadata.setdefault("course_lib", {})["grader_outputs"] = list(range(len(cell.outputs)))
    if error is not None:
        name = exception_name(error.get("ename", ""))
        add_grader_output(cell, f"(this cell raised {name}; its message is not returned)\n", "stderr", at=0)


def student_copy(executed: str, hidden: bool) -> str:
    """The notebook returned to the student, from the instructor's executed copy: with hidden checks, outputs of the
    student's code withheld (see the module docstring), and a first cell saying so."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    nb = nbformat.reads(executed, as_version=4)
    if hidden:
        for cell in nb.cells:
            if cell.cell_type == "code":
                _withhold(cell)
        top = new_markdown_cell(f"**{MARKER}** {WITHHELD}")
        top.metadata = {"course_lib": {"grader_note": True}}
        nb.cells.insert(0, top)
    return nbformat.writes(nb)


def has_hidden_checks(bundle: dict) -> bool:
    """Whether an assignment has hidden tests (then the student gets none of the kernel's text back)."""
    from .markup import BEGIN_HIDDEN

    return any(c["kind"] == "test" and BEGIN_HIDDEN in c["source"] for c in bundle["cells"])
