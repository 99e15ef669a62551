"""Build the course site as `course-lib site` does and write what it holds and what it cost.

    python scripts/measure_site.py --report docs/results/course_site

Builds the student edition from scratch (a fresh cache folder, so every notebook is executed in fast mode and
nothing comes from an earlier build), then again with that cache (what a rebuild after no notebook change costs),
and writes report.md + report.json: the page counts by kind, wall and CPU seconds of each build, the machine and
its load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from course_lib.cli.site import build_site
from course_lib.core.reports import write_report


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def timed_build(out: Path) -> dict:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = build_site(out, "student", execute="fast")
    return {
        "pages": result["pages"],
        "chapters": result["chapters"],
        "reports": result["reports"],
        "api_pages": result["api_pages"],
        "warnings": len(result["warnings"]),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "cpu_seconds": round(_cpu_seconds() - cpu, 1),
    }


def render_markdown(record: dict) -> str:
    """report.md, from report.json alone (course_lib.core.reports)."""
    cold, warm = record["cold"], record["warm"]
    lines = [
        "# The course site (`course-lib site`)",
        "",
        f"`python scripts/measure_site.py --report {record.get('report_folder', 'docs/results/course_site')}`, {record['date']}, on {record['machine']}; load "
        f"average {record['load_before']} before and {record['load_after']} after (a shared machine, fully loaded "
        "by other jobs: wall times are upper bounds, CPU seconds are the better guide).",
        "",
        f"The student edition has **{cold['pages']} HTML pages** in all, among them {cold['chapters']} chapters (one "
        f"per notebook, in notebook order), {cold['reports']} measured reports (report.md of each docs/results "
        f"folder) and {cold['api_pages']} API reference pages (one per subpackage, from the docstrings); "
        f"{record['site_megabytes']} MB with MathJax, the theme and the figures.",
        "",
        "**n = 1: each build was timed once** (one measurement, no repeats, so no spread or interval can be "
        "given; the load average above says how busy the machine was).",
        "",
        "| build | n (builds) | wall s | CPU s | Sphinx warnings |",
        "|---|---|---|---|---|",
        f"| first (every notebook executed in fast mode) | {cold.get('builds', 1)} | {cold['wall_seconds']} "
        f"| {cold['cpu_seconds']} | {cold['warnings']} |",
        f"| again, nothing changed (outputs from the cache) | {warm.get('builds', 1)} | {warm['wall_seconds']} "
        f"| {warm['cpu_seconds']} | {warm['warnings']} |",
        "",
        "Warnings are counted, not inspected here; those read in development builds were docstrings that are not "
        "valid reStructuredText (they render, with a visible glitch). CPU seconds: this process and the processes "
        "it waited for (Sphinx and, through it, the notebooks' kernels).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True, help="folder for report.md and report.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["COURSE_LIB_CACHE"] = str(Path(scratch) / "cache")  # a cold notebook cache: every chapter runs
        load_before = os.getloadavg()[0]
        cold = timed_build(Path(scratch) / "site")
        warm = timed_build(Path(scratch) / "site")
        load_after = os.getloadavg()[0]
        html_files = sorted(p for p in (Path(scratch) / "site").rglob("*.html"))
        size_mb = sum(p.stat().st_size for p in (Path(scratch) / "site").rglob("*") if p.is_file()) / 1e6
    record = {
        "command": "course-lib site OUT (student edition, notebooks executed in fast mode)",
        "cold": cold,
        "warm": warm,
        "html_files": len(html_files),
        "site_megabytes": round(size_mb, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load_before": round(load_before, 1),
        "load_after": round(load_after, 1),
        "date": time.strftime("%Y-%m-%d"),
    }
    record["report_folder"] = str(args.report)
    write_report(args.report, record, render_markdown)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
