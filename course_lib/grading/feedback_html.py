"""What a student gets back: their notebook as it ran with the grader's notes, and the same as one HTML page.

Three copies are made from the executed notebook a worker returns (`SubmissionResult.executed`):

- `instructor_copy` (OUT/executed/STUDENT.ipynb): every output, for marking written answers;
- `student_copy` (OUT/feedback/STUDENT.ipynb): what goes back to the student;
- `feedback_html` (OUT/feedback/STUDENT.html): the student copy through nbconvert, with the summary on top.

The grader's notes cannot be forged. They are kept in cell metadata (`{"course_lib": {"grade": {...}}}` on each
graded cell) and shown only in cells the grader writes: the output of a test cell (whose code never runs in the
student's kernel) and notes the grader inserts, marked `{"course_lib": {"grader_note": true}}`. Whatever the
submission put into metadata under `course_lib` is removed first; in its outputs the grader's marker
`[course-lib grade]` is defused, and only plain text and PNG/JPEG images are kept (no HTML, markdown, SVG or
JavaScript from a submission). In the HTML page the student's markdown is rendered and then cleaned to a short list
of tags with no `class`, `id` or `style` (so nothing can look like a grader's box, which has the class
`course-lib-grader`), raw cells are shown as text, and a Content-Security-Policy forbids every script.

Hidden tests never reach the student: test cells show the student version (no hidden region), hidden checks say
only that they failed, and when an assignment has hidden checks the outputs of the student's code are not
returned at all (a cell that raised says only the exception's class): the kernel could read the hidden inputs
(and its answers are called with them), so anything it printed, displayed or put into an exception message may
hold them. The instructor's copy keeps them.
"""

from __future__ import annotations

import html
import re

from . import markup

MARKER = "[course-lib grade]"
DEFUSED = "[printed by the submission: course-lib grade]"
KEPT_MIMES = ("text/plain", "image/png", "image/jpeg")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,79}$")
_RAISED = re.compile(r"( raised [A-Za-z_][\w.]*)(:.*)?$", re.S)
WITHHELD = (
    "The outputs of your code are not returned for this assignment: it has hidden tests, whose inputs your code "
    "could print. Run the notebook yourself to see them."
)
SAFE_TAGS = [
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
]
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
CSS = """
.course-lib-grader { border: 2px solid #1f5fa8; background: #eef4fb; padding: 0.6em 1em; margin: 0.5em 0;
  font-family: sans-serif; }
.course-lib-grader .course-lib-label { font-weight: bold; color: #1f5fa8; }
.course-lib-grader.failed { border-color: #b02a2a; background: #fbeeee; }
.course-lib-grader.failed .course-lib-label { color: #b02a2a; }
.course-lib-student { border-left: 4px solid #bbb; padding-left: 0.8em; }
"""


def has_hidden_tests(bundle: dict) -> bool:
    return any(c["kind"] == "test" and markup.BEGIN_HIDDEN in c["source"] for c in bundle["cells"])


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def defuse(text: str) -> str:
    return _text(text).replace(MARKER, DEFUSED)


def student_event(event: str, hidden: bool) -> str:
    """An event line for the student: with hidden tests, an exception's message (made by the submission) is cut."""
    return (
        _RAISED.sub(r"\1 (its message is not returned: this assignment has hidden tests)", event) if hidden else event
    )


def _clean_output(out):
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
            if mime not in data:
                continue
            value = _text(data[mime])
            if mime == "text/plain":
                kept[mime] = defuse(value)
            elif _BASE64.match(value):
                kept[mime] = value
        return new_output("display_data", data=kept) if kept else None
    return None


def _withheld(outputs) -> list:
    """Outputs of the student's code when they are not returned: only the class of an exception it raised."""
    from nbformat.v4 import new_output

    for out in outputs or []:
        if isinstance(out, dict) and out.get("output_type") == "error":
            name = str(out.get("ename", ""))
            name = name if _IDENTIFIER.match(name) else "an exception"
            return [new_output("stream", name="stderr", text=f"(this cell raised {name})\n")]
    return []


def _note_text(q) -> str:
    points = "?" if q.points is None else f"{q.points:g}"
    status = "needs manual grading" if q.status == "manual" else q.status
    lines = [f"{MARKER} {q.question}: {points} / {q.max_points:g} points, {status}"]
    if q.message and q.status != "passed":
        lines.append(f"  {' '.join(q.message.split())}")
    lines += [f"  - {' '.join(d.split())}" for d in q.details.splitlines()[:12]]
    return "\n".join(lines) + "\n"


def _note_html(q) -> str:
    points = "?" if q.points is None else f"{q.points:g}"
    status = "needs manual grading" if q.status == "manual" else q.status
    good = q.status in ("passed", "graded by hand", "manual") or (q.points or 0) >= q.max_points
    parts = [
        f'<div class="course-lib-grader{"" if good else " failed"}" data-grade-id="{html.escape(q.question)}">',
        f'<span class="course-lib-label">Grader: {html.escape(q.question)}: {points} / {q.max_points:g} points'
        f" ({html.escape(status)})</span>",
    ]
    if q.message and q.status != "passed":
        label = "Comment" if q.status == "graded by hand" else "Hint"
        parts.append(f"<p>{label}: {html.escape(' '.join(q.message.split()))}</p>")
    details = q.details.splitlines()[:12]
    if details:
        parts.append("<ul>" + "".join(f"<li>{html.escape(' '.join(d.split()))}</li>" for d in details) + "</ul>")
    return "".join(parts) + "</div>"


def _grade_meta(q) -> dict:
    return {
        "cell": q.question,
        "points": q.points,
        "max_points": q.max_points,
        "status": q.status,
        "message": q.message,
        "details": q.details.splitlines()[:12],
    }


def _note_output(q):
    from nbformat.v4 import new_output

    return new_output(
        "display_data",
        data={"text/plain": _note_text(q), "text/html": _note_html(q)},
        metadata={"course_lib": {"grader": True}},
    )


def _copy(executed: str, res, withhold: bool):
    """The executed notebook with the grader's notes; the student's outputs cleaned (or withheld)."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    nb = nbformat.reads(executed, as_version=4)
    questions = {q.question: q for q in res.questions}
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else None
        cell.metadata = {"nbgrader": nbg} if nbg else {}  # nothing of the submission's own metadata survives
        cell.pop("attachments", None)
        gid = nbg.get("grade_id") if nbg else None
        q = questions.get(gid)
        if cell.cell_type == "code":
            if q is not None and q.kind == "test":  # the grader wrote this cell's output: it is the verdict
                cell.outputs = [_note_output(q)]
            elif withhold:
                cell.outputs = _withheld(cell.get("outputs"))
            else:
                cell.outputs = [o for o in map(_clean_output, cell.get("outputs") or []) if o is not None]
        cells.append(cell)
        if q is not None:
            cell.metadata["course_lib"] = {"grade": _grade_meta(q)}
            if q.kind != "test":
                note = new_markdown_cell(_plain_md(_note_text(q)))
                note.metadata = {"course_lib": {"grader_note": True, "grade": _grade_meta(q)}}
                cells.append(note)
    nb.cells = cells
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    return nb


def _plain_md(text: str) -> str:
    from .report import plain_line

    return "\n\n".join(plain_line(line, 2000) for line in text.splitlines() if line.strip())


def instructor_copy(executed: str, res) -> str:
    import nbformat

    return nbformat.writes(_copy(executed, res, withhold=False))


def student_copy(executed: str, res, bundle: dict, summary_lines: list[str]) -> str:
    import nbformat
    from nbformat.v4 import new_markdown_cell

    withhold = has_hidden_tests(bundle)
    nb = _copy(executed, res, withhold)
    lines = summary_lines + ([WITHHELD] if withhold else [])
    top = new_markdown_cell("\n\n".join(_plain_md(line) for line in lines))
    top.metadata = {"course_lib": {"grader_note": True, "summary": True}}
    nb.cells.insert(0, top)
    return nbformat.writes(nb)


def _clean_markdown(source: str) -> str:
    import bleach
    import mistune

    rendered = mistune.html(source)
    return bleach.clean(rendered, tags=SAFE_TAGS, attributes={"a": ["href"]}, protocols=["https", "http"], strip=False)


def _raw_html(content: str, cls: str = "course-lib-student"):
    from nbformat.v4 import new_raw_cell

    cell = new_raw_cell(f'<div class="{cls}">{content}</div>' if cls else content)
    cell.metadata = {"raw_mimetype": "text/html"}
    return cell


def feedback_html(student_nb: str | None, res, summary_lines: list[str], title: str) -> str:
    """One self-contained HTML page: the summary, then the notebook with the grader's notes beside its cells."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_notebook

    summary = "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines)
    rows = "".join(
        f"<tr><td>{html.escape(q.question)}</td><td>{'?' if q.points is None else f'{q.points:g}'} / "
        f"{q.max_points:g}</td><td>{html.escape('needs manual grading' if q.status == 'manual' else q.status)}</td></tr>"
        for q in res.questions
    )
    top = (
        f'<div class="course-lib-grader course-lib-summary"><h1>{html.escape(title)}</h1>{summary}'
        f"<table><thead><tr><th>cell</th><th>points</th><th>status</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
    nb = nbformat.reads(student_nb, as_version=4) if student_nb else new_notebook()
    cells = [_raw_html(top, "")]
    for cell in nb.cells:
        own = cell.metadata.get("course_lib", {}) if isinstance(cell.metadata.get("course_lib"), dict) else {}
        locked = bool(cell.metadata.get("nbgrader", {}).get("locked"))
        if own.get("summary"):
            continue  # shown above, from the results themselves
        if own.get("grader_note"):
            cells.append(_raw_html(_note_html(_Note(own["grade"])), ""))
        elif cell.cell_type == "markdown" and locked:  # the bundle's own text (reconciled): the instructor's
            cells.append(cell)
        elif cell.cell_type == "markdown":
            cells.append(_raw_html(_clean_markdown(_text(cell.source))))
        elif cell.cell_type == "raw":
            cells.append(_raw_html(f"<pre>{html.escape(_text(cell.source))}</pre>"))
        else:
            cells.append(cell)
    nb.cells = cells
    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_anchor_links = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    head = f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><style>{CSS}</style>'
    return body.replace("<head>", "<head>" + head, 1)


class _Note:
    """A grader note read back from the student copy's metadata, shaped like a QuestionResult for `_note_html`."""

    def __init__(self, grade: dict):
        self.question = str(grade.get("cell", "")) or "note"
        self.points = grade.get("points")
        self.max_points = float(grade.get("max_points") or 0)
        self.status = str(grade.get("status", ""))
        self.message = str(grade.get("message", ""))
        self.details = "\n".join(map(str, grade.get("details", [])))
