"""The class report: per lesson, what the class got wrong, summed from the graded results (no regrading).

    WORK/report/index.html        every lesson at a glance, and what the report does not cover
    WORK/report/<lesson>.html     score histogram, each test's hidden and visible pass rate, named bugs
                                  ranked by how many students hit them (one anonymised example each),
                                  other kinds of failure, functions left unimplemented, time-outs,
                                  crashes and unreadable submissions
    WORK/report/report.json       the same numbers, for a spreadsheet or a script

A named bug is the diagnosis a hidden check appends to its message (". Likely bug: stride ignored").
Hidden checks are result.json's parts; visible tests are the same test cells as they ran in the
student's notebook (they pass when the cell raised nothing).
"""
from __future__ import annotations

import html
import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from autograder.coursedir import grade_id
from autograder.insight.figures import bar_chart, histogram
from autograder.insight.load import ClassResults, Submission, visible_test_outcomes
from convlab.speed import SPEED_CHECK_NOTE

_BUG = re.compile(r"\. Likely bug: (.+)$", re.S)
_NOT_DONE = re.compile(r"^(\w+) is not (?:implemented yet|defined)")
# Failures without a named bug, by what the message says (first match wins).
FAILURE_KINDS = [
    ("not implemented", r"is not implemented yet"),
    ("not defined", r"is not defined"),
    ("time limit", r"did not return within the time limit"),
    ("crashed", r"crashed the Python process"),
    ("not checked", r"was not checked:|^not graded:|could not judge"),
    ("changed its input in place", r"changed its argument"),
    ("raised an exception", r" raised \w+"),
    ("NaN or inf", r"NaN or inf"),
    ("wrong shape or length", r"has shape|returned \d+ items|is missing keys"),
    ("wrong dtype", r"dtype|returned float64|returned float32"),
    ("wrong type", r"returned \w+, expected"),
    ("wrong values", r"is wrong at|off by|expected|, not "),
]
_TIMEOUT = ("infinite loop?", "did not return within the time limit", "grading stopped:")
_CRASH = ("the Python process died", "crashed the Python process")


def anonymise(text: str, students: list[str]) -> str:
    """`text` with every student id of the class replaced (longest first, so 'ann' inside 'anna' is not
    half-replaced)."""
    for student in sorted(students, key=len, reverse=True):
        if len(student) >= 3:
            text = text.replace(student, "<student>")
    return text


def failure_kind(message: str) -> str:
    return next((kind for kind, pattern in FAILURE_KINDS if re.search(pattern, message)), "other")


def _problems(subs: list[Submission]) -> dict[str, list[str]]:
    """Kind of trouble -> the students who had it (a student may have several kinds)."""
    found: dict[str, list[str]] = defaultdict(list)
    for sub in subs:
        r = sub.result
        texts = [*r["notes"], *(p["message"] for p in r["parts"])]
        kinds = {"unreadable": r["status"] == "unreadable", "skipped (not where nbgrader's layout puts it)":
                 r["status"] == "skipped", "grader fault": r["status"] == "error",
                 "time-out": any(t in text for text in texts for t in _TIMEOUT),
                 "crash": any(t in text for text in texts for t in _CRASH),
                 "graded without its executed notebook": r["status"] == "graded" and sub.notebook is None}
        for kind, hit in kinds.items():
            if hit:
                found[kind].append(sub.student)
    return found


def lesson_numbers(lesson: str, subs: list[Submission], everyone: list[str]) -> dict:
    """Every number of one lesson's page (JSON-ready); `everyone`: all student ids, for anonymising."""
    graded = [s for s in subs if s.result["status"] == "graded"]
    max_score = max((s.result["max_score"] for s in subs), default=0.0)
    scores = [s.result["score"] for s in subs]
    tests: dict[str, dict] = {}
    bugs: dict[tuple[str, str], dict] = {}
    kinds: dict[str, dict] = {}
    not_done: dict[str, set[str]] = defaultdict(set)
    for sub in graded:
        visible = visible_test_outcomes(sub.notebook) if sub.notebook is not None else {}
        for cell in sub.cells(("stub",)):
            if gid := grade_id(cell):
                not_done[gid].add(sub.student)
        for part in sub.result["parts"]:
            gid, passed, message = part["grade_id"], part["score"] >= part["points"], part["message"]
            t = tests.setdefault(gid, {"test": gid, "points": part["points"], "graded": 0, "hidden_pass": 0,
                                       "visible_known": 0, "visible_pass": 0, "visible_not_run": 0,
                                       "visible_pass_hidden_fail": 0, "visible_fail_hidden_pass": 0})
            t["graded"] += 1
            t["hidden_pass"] += passed
            seen = visible.get(gid)
            if seen == "untimed":   # its speed rule is the hidden speed case's: so is its outcome there
                seen = "fail" if not passed and SPEED_CHECK_NOTE in message else "pass"
            if seen in ("pass", "fail"):
                t["visible_known"] += 1
                t["visible_pass"] += seen == "pass"
                t["visible_pass_hidden_fail"] += seen == "pass" and not passed
                t["visible_fail_hidden_pass"] += seen == "fail" and passed
            t["visible_not_run"] += seen == "not run"
            if passed:
                continue
            if match := _NOT_DONE.match(message):
                not_done[match.group(1)].add(sub.student)
            example = anonymise(message, everyone)
            if bug := _BUG.search(message):
                entry = bugs.setdefault((gid, bug.group(1).strip()), {"test": gid, "bug": bug.group(1).strip(),
                                                                      "students": 0, "example": example})
            else:
                kind = failure_kind(message)
                entry = kinds.setdefault(kind, {"kind": kind, "failures": 0, "tests": Counter(), "example": example})
                entry["tests"][gid] += 1
                entry["failures"] += 1
                continue
            entry["students"] += 1
    for entry in kinds.values():
        entry["tests"] = dict(entry["tests"].most_common())
    problems = _problems(subs)
    return {
        "lesson": lesson, "max_score": max_score, "results": len(subs),
        "status": dict(Counter(s.result["status"] for s in subs).most_common()),
        "mean_score": round(statistics.fmean(scores), 2) if scores else None,
        "median_score": statistics.median(scores) if scores else None,
        "scores": dict(sorted(Counter(scores).items())),
        "tests": sorted(tests.values(), key=lambda t: (t["hidden_pass"] - t["graded"], t["test"])),
        "named_bugs": sorted(bugs.values(), key=lambda b: (-b["students"], b["test"], b["bug"])),
        "other_failures": sorted(kinds.values(), key=lambda k: (-k["failures"], k["kind"])),
        "unimplemented": [{"function": f, "students": len(who)}
                          for f, who in sorted(not_done.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
        "problems": [{"kind": kind, "students": len(who), "who": sorted(who)}
                     for kind, who in sorted(problems.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
    }


def class_numbers(found: ClassResults) -> dict:
    everyone = sorted({s.student for subs in found.by_lesson.values() for s in subs})
    lessons = {lesson: lesson_numbers(lesson, found.by_lesson[lesson], everyone)
               for lesson in found.lessons if found.by_lesson.get(lesson)}
    for lesson, numbers in lessons.items():
        numbers["missing"] = {"no result (another lesson has one)": found.missing(lesson),
                              "submitted, not graded yet": found.ungraded.get(lesson, [])}
    others = sorted(set(found.by_lesson) - set(found.lessons))
    return {"students": len(everyone), "lessons": lessons,
            "lessons_without_results": [x for x in found.lessons if x not in lessons],
            "results_of_no_lesson": {x: len(found.by_lesson[x]) for x in others},
            "unreadable_files": found.problems}


# --- HTML ---------------------------------------------------------------------------------------

STYLE = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;
vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}.warn{background:#fff6e0;padding:.5rem 1rem;
border-left:4px solid #e0a800}img{max-width:100%}small{color:#666}mark{background:#ffe08a}pre{white-space:pre-wrap;
margin:0;font-size:.8rem}"""
esc = html.escape


def page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return "<p><small>none</small></p>"
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td{" class=n" if i in numeric else ""}>{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}% ({part}/{whole})" if whole else "–"


def _missing_html(numbers: dict) -> str:
    lines = [f"<li>{esc(what)}: {len(who)} ({esc(', '.join(who[:20]))}{', …' if len(who) > 20 else ''})</li>"
             for what, who in numbers["missing"].items() if who]
    return f'<div class="warn"><b>Not covered by this page</b><ul>{"".join(lines)}</ul></div>' if lines else ""


def lesson_html(n: dict) -> str:
    tests = n["tests"]
    hist = histogram(n["scores"], n["max_score"], f"{n['lesson']}: scores of {n['results']} submissions")
    bars = bar_chart([t["test"] for t in tests],
                     {"hidden checks": [t["hidden_pass"] / t["graded"] if t["graded"] else 0 for t in tests],
                      "visible tests": [t["visible_pass"] / t["visible_known"] if t["visible_known"] else 0
                                        for t in tests]}, "share of graded submissions that passed")
    test_rows = [[esc(t["test"]), f'{t["points"]:g}', _pct(t["hidden_pass"], t["graded"]),
                  _pct(t["visible_pass"], t["visible_known"]), t["visible_pass_hidden_fail"],
                  t["visible_fail_hidden_pass"], t["visible_not_run"]] for t in tests]
    bug_rows = [[b["students"], esc(b["test"]), esc(b["bug"]), f'<pre>{esc(b["example"])}</pre>']
                for b in n["named_bugs"]]
    kind_rows = [[k["failures"], esc(k["kind"]), esc(", ".join(f"{t} ({c})" for t, c in k["tests"].items())),
                  f'<pre>{esc(k["example"])}</pre>'] for k in n["other_failures"]]
    todo_rows = [[u["students"], esc(u["function"])] for u in n["unimplemented"]]
    problem_rows = [[p["students"], esc(p["kind"]), esc(", ".join(p["who"]))] for p in n["problems"]]
    status = ", ".join(f"{count} {esc(s)}" for s, count in n["status"].items())
    return page(f"{n['lesson']}: class report", f"""<p><a href="index.html">all lessons</a></p>
<h1>{esc(n['lesson'])}: class report</h1>
<p>{n['results']} results ({status}); mean score {n['mean_score']} of {n['max_score']:g}, median {n['median_score']}.</p>
{_missing_html(n)}
<h2>Scores</h2><img alt="score histogram" src="{hist}">
<h2>Tests: hidden checks and visible tests</h2>
<p><small>Of graded submissions. A hidden check passes when the test earned its points; a visible test when its cell
raised nothing in the student's notebook (the speed rule of lessons 01 and 03, timed by the hidden check
alone when graded, counts as the hidden speed case went). "visible pass, hidden fail" counts code that the visible tests did not
catch; "visible fail, hidden pass" usually a visible test cell that failed for another reason (an earlier error).
Sorted by hidden failures.</small></p>
<img alt="pass rates" src="{bars}">
{table(["test", "points", "hidden checks passed", "visible tests passed", "visible pass, hidden fail",
        "visible fail, hidden pass", "visible not run"], test_rows, {1, 4, 5, 6})}
<h2>Named bugs</h2><p><small>The likely bug a hidden check named, by how many students it named it for; the
example is one student's message with student ids removed.</small></p>
{table(["students", "test", "likely bug", "example message"], bug_rows, {0})}
<h2>Other failures</h2><p><small>Failed hidden checks without a named bug, by what the message says.</small></p>
{table(["failures", "kind", "tests (failures)", "example message"], kind_rows, {0})}
<h2>Functions left unimplemented</h2><p><small>Stub cells handed in unchanged, or functions the checks found
not implemented or not defined.</small></p>
{table(["students", "function"], todo_rows, {0})}
<h2>Time-outs, crashes, unreadable submissions</h2>
{table(["students", "what", "who"], problem_rows, {0})}""")


def index_html(numbers: dict, similarity: dict | None) -> str:
    rows = []
    for lesson, n in numbers["lessons"].items():
        top = n["named_bugs"][0] if n["named_bugs"] else None
        flagged = (similarity or {}).get(lesson, {}).get("flagged")
        rows.append([f'<a href="{esc(lesson)}.html">{esc(lesson)}</a>', n["results"],
                     n["status"].get("graded", 0), f"{n['mean_score']} / {n['max_score']:g}",
                     f'{esc(top["bug"])} ({top["students"]})' if top else "–",
                     sum(p["students"] for p in n["problems"]),
                     f'<a href="similarity-{esc(lesson)}.html">{len(flagged)} pairs</a>' if flagged is not None
                     else "not run"])
    warn = []
    if numbers["lessons_without_results"]:
        warn.append("lessons without any result: " + ", ".join(numbers["lessons_without_results"]))
    for lesson, count in numbers["results_of_no_lesson"].items():
        warn.append(f"{count} results under the name {lesson}, which is no lesson of this course (skipped folders)")
    warn += numbers["unreadable_files"]
    for lesson, n in numbers["lessons"].items():
        for what, who in n["missing"].items():
            if who:
                warn.append(f"{lesson}: {what}: {len(who)} students")
    warned = (f'<div class="warn"><b>What this report does not cover</b><ul>'
              f'{"".join(f"<li>{esc(w)}</li>" for w in warn)}</ul></div>') if warn else ""
    return page("Class report", f"""<h1>Class report</h1>
<p>{numbers['students']} students; from the graded results in <code>autograded/</code> (nothing was regraded).
The numbers are also in <a href="report.json">report.json</a>.</p>{warned}
{table(["lesson", "results", "graded", "mean score", "most common named bug (students)",
        "time-outs, crashes, unreadable, skipped", "similarity"], rows, {1, 2, 5})}""")


def write_report(found: ClassResults, out: Path) -> tuple[dict, list[Path]]:
    """Write index.html, <lesson>.html per lesson with results, and report.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    numbers = class_numbers(found)
    similarity_path = out / "similarity.json"
    try:
        similarity = json.loads(similarity_path.read_text()) if similarity_path.exists() else None
    except ValueError:
        similarity = None
    written = []
    for lesson, n in numbers["lessons"].items():
        written.append(out / f"{lesson}.html")
        written[-1].write_text(lesson_html(n))
    (out / "report.json").write_text(json.dumps(numbers, indent=1))
    (out / "index.html").write_text(index_html(numbers, similarity))
    return numbers, [out / "index.html", *written, out / "report.json"]
