"""One HTML page per student (OUT/feedback/STUDENT.html): the summary, then their notebook as returned to them
(`returned.student_copy`) with each graded cell's points, message and per-case lines beside it.

nbconvert's HTML of the student's copy, made safe to open: the student's markdown cells are rendered by mistune and
cleaned by bleach to a short list of tags with no `class`, `id` or `style` (so nothing of theirs can look like the
grader's boxes, which have the class `course-lib-grader`) and links only to http(s); raw cells are shown as text;
code, streams and tracebacks are escaped by nbconvert; outputs are only plain text and PNG/JPEG already
(`returned.clean_output`); and a Content-Security-Policy forbids every script and every request but inline images.
The boxes are made here from the results, never from anything in the notebook. Hidden tests never appear: test
cells are the student version, hidden checks say only that they failed.
"""

from __future__ import annotations

import functools
import html

from . import returned

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


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _status(q) -> str:
    return "needs manual grading" if q.status == "manual" else q.status


def note_html(q) -> str:
    """The grader's box for one graded cell."""
    points = "?" if q.points is None else f"{q.points:g}"
    good = q.status in ("passed", "graded by hand", "manual")
    parts = [
        f'<div class="course-lib-grader{"" if good else " failed"}" data-grade-id="{html.escape(q.question)}">',
        f'<span class="course-lib-label">Grader: {html.escape(q.question)}: {points} / {q.max_points:g} points'
        f" ({html.escape(_status(q))})</span>",
    ]
    if q.message and q.status != "passed":
        label = "Comment" if q.status == "graded by hand" else "Hint"
        parts.append(f"<p>{label}: {html.escape(' '.join(q.message.split()))}</p>")
    details = q.details.splitlines()[:12]
    if details:
        parts.append("<ul>" + "".join(f"<li>{html.escape(' '.join(d.split()))}</li>" for d in details) + "</ul>")
    return "".join(parts) + "</div>"


def clean_markdown(source: str) -> str:
    """A student's markdown as HTML that can only be text, emphasis, lists, tables, code and http(s) links."""
    import bleach
    import mistune

    rendered = mistune.html(source)
    return bleach.clean(rendered, tags=SAFE_TAGS, attributes={"a": ["href"]}, protocols=["https", "http"], strip=False)


class _Slots:
    """HTML made here, put into nbconvert's page after the export: a raw cell holds only a token (a random one per page,
    so no text of the student's can be one), replaced by the HTML afterwards. (nbconvert escapes parts of raw HTML.)"""

    def __init__(self):
        import secrets

        self.nonce = secrets.token_hex(16)
        self.html: dict[str, str] = {}

    def cell(self, content: str, cls: str = "course-lib-student"):
        from nbformat.v4 import new_raw_cell

        token = f"course-lib-slot-{self.nonce}-{len(self.html)}"
        self.html[token] = f'<div class="{cls}">{content}</div>' if cls else content
        cell = new_raw_cell(token)
        cell.metadata = {"raw_mimetype": "text/html"}
        return cell

    def fill(self, page: str) -> str:
        for token, content in self.html.items():
            page = page.replace(token, content, 1)
        return page


@functools.cache
def _exporter():
    """One HTML exporter per process: a new one compiles nbconvert's templates again (about 0.2 s a page). It holds
    configuration only; each page's notebook and resources are its call's own."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    exporter.exclude_anchor_links = True
    return exporter


def page(student_nb: str | None, res, summary_lines: list[str], title: str) -> str:
    """One self-contained HTML page: the summary, then the notebook with the grader's boxes after its graded cells.
    `res` has the manual marks in it; `summary_lines` are plain text (escaped here)."""
    import nbformat
    from nbformat.v4 import new_notebook

    rows = "".join(
        f"<tr><td>{html.escape(q.question)}</td><td>{'?' if q.points is None else f'{q.points:g}'} / "
        f"{q.max_points:g}</td><td>{html.escape(_status(q))}</td></tr>"
        for q in res.questions
    )
    top = (
        f'<div class="course-lib-grader course-lib-summary"><h1>{html.escape(title)}</h1>'
        + "".join(f"<p>{html.escape(line)}</p>" for line in summary_lines)
        + "<table><thead><tr><th>cell</th><th>points</th><th>status</th></tr></thead>"
        + f"<tbody>{rows}</tbody></table></div>"
    )
    nb = nbformat.reads(student_nb, as_version=4) if student_nb else new_notebook()
    questions = {q.question: q for q in res.questions}
    slots = _Slots()
    cells = [slots.cell(top, "")]
    for cell in nb.cells:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        nbg = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        own = meta.get("course_lib") if isinstance(meta.get("course_lib"), dict) else {}
        cell.pop("attachments", None)
        if own.get("grader_note"):  # the student copy's first cell: the grader's own words
            words = html.escape(_text(cell.source).replace(f"**{returned.MARKER}**", "", 1))
            cells.append(slots.cell(f"<p>{words}</p>", "course-lib-grader"))
            continue
        if cell.cell_type == "markdown" and nbg.get("locked"):  # the bundle's text, put back by the grader
            cells.append(cell)
        elif cell.cell_type == "markdown":
            cells.append(slots.cell(clean_markdown(_text(cell.source))))
        elif cell.cell_type == "raw":
            cells.append(slots.cell(f"<pre>{html.escape(_text(cell.source))}</pre>"))
        else:
            cells.append(cell)
        q = questions.get(nbg.get("grade_id"))
        if q is not None:
            cells.append(slots.cell(note_html(q), ""))
    nb.cells = cells
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    head = f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><style>{CSS}</style>'
    return slots.fill(body.replace("<head>", "<head>" + head, 1))
