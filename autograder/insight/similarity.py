"""Pairs of submissions of one lesson whose own code is alike, for a human to look at.

A submission's own code is what the grader found the student wrote: its solution cells that differ
from the stubs and the cells it added (origins "student" and "added" in the executed notebook), in
notebook order. Everything the release gave everyone (stubs' signatures and docstrings, provided
and test cells) is removed as boilerplate.

Fingerprints are copydetect's (https://github.com/blingenf/copydetect): pygments tokenizes the code,
names become V/F/O, strings S, comments and whitespace vanish; k-grams of the filtered text are
hashed and winnowed (Schleimer, Wilkerson and Aiken, SIGMOD 2003), and k-grams that also occur in
the release are dropped. Two fingerprints are compared by copydetect's `compare_files`: the share of
each one's code covered by k-grams both contain, and where (for the side-by-side view).

All pairs of a lesson are first screened with a sparse matrix product (fingerprints in common,
scipy), and only pairs that could reach the threshold are compared exactly, so 500 submissions
(124,750 pairs) take seconds.
"""
from __future__ import annotations

import ast
import functools
import html
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import get_token_coverage, highlight_overlap
from pygments import lexers, token
from scipy import sparse

from autograder.grader.notebook import grade_id, is_solution
from autograder.insight.figures import score_distribution
from autograder.insight.load import ClassResults, Submission, code_cells, source
from autograder.insight.report import page, table

NOISE = 25              # k: filtered characters per k-gram; shorter matches are never counted
WINDOW = 1              # every k-gram is a fingerprint: scores do not depend on the (per-process) hash values
MIN_OVERLAP = 80        # filtered characters in common below which a pair is never flagged
DEFAULT_THRESHOLD = 0.5   # documented in docs/grading.md, measured by autograder/tests/test_insight.py
SHOWN = 40              # flagged pairs shown side by side on a page (all are in the table and JSON)
COMMON = 0.5           # fingerprints in more than this share of a lesson's submissions are ignored
OWN = ("student", "added")
CELL_MARK = "\n# ── "


def own_code(sub: Submission) -> str:
    """The student's own cells, each headed by a comment naming it (comments are not fingerprinted)."""
    parts = []
    for cell in sub.cells(OWN):
        name = grade_id(cell) or "a cell the student added"
        parts.append(f"{CELL_MARK}{name} ──\n{source(cell).strip()}\n")
    return "".join(parts)


def given_code(release: dict) -> str:
    """Every code cell of the release: what all students were handed."""
    return "\n\n".join(source(c) for c in code_cells(release))


def bound_names(code: str) -> set[str]:
    """Names the code binds itself (variables, parameters, loop targets, helper functions): what a
    student renames. Library and course names (np.einsum, range, conv_output_size) are kept, so two
    programs that call different functions differ. Code that does not parse: every plain name."""
    found: set[str] = set()
    for cell in code.split(CELL_MARK):
        if cell.partition("\n")[0].endswith(" ──"):    # own_code's heading line
            cell = cell.partition("\n")[2]
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            found |= {text for kind, text in _lexer().get_tokens(cell) if kind in _NAMES}
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                found.add(node.id)
            elif isinstance(node, ast.arg):
                found.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found.add(node.name)
    return found


_NAMES = {token.Name, token.Name.Variable, token.Name.Function, token.Name.Class}


@functools.cache
def _lexer():
    return lexers.get_lexer_by_name("python")


def filter_code(code: str, keep: set[str]) -> tuple[str, np.ndarray]:
    """copydetect's filter (utils.filter_code: strings become S, comments and whitespace vanish, with the
    offsets that map the filtered text back to the code), except that only the names the code binds
    become V, not those it uses from numpy, Python or the course; `keep` (the graded functions' names,
    the same for everyone) stays too."""
    rename = bound_names(code) - keep
    out: list[str] = []
    length, removed, offsets, previous = 0, 0, [[0, 0]], ""
    for kind, text in _lexer().get_tokens(code):
        if kind in token.Text or kind in token.Comment:
            offsets.append([length - 1, removed])
            removed += len(text)
            continue
        if kind in token.Literal.String:
            replacement = '"' if text in ('"', "'") else "S"
        elif kind in _NAMES and text in rename and previous != ".":
            replacement = "V"
        else:
            replacement = text
        out.append(replacement)
        length += len(replacement)
        if replacement != text:
            offsets.append([length - 1, removed])
            removed += len(text) - len(replacement)
        previous = text
    return "".join(out), np.array(offsets)


def fingerprint(name: str, code: str, boilerplate: np.ndarray, keep: set[str], window: int = WINDOW) -> CodeFingerprint:
    """copydetect's winnowed fingerprint of `code` filtered by filter_code, mapped back to `code`."""
    filtered, offsets = filter_code(code, keep)
    fp = CodeFingerprint(name, NOISE, window, boilerplate=boilerplate, filter=False, fp=io.StringIO(filtered))
    fp.raw_code, fp.offsets = code, offsets
    return fp


def boilerplate_hashes(given: str, keep: set[str]) -> np.ndarray:
    """Every k-gram hash of the given code (window 1: nothing of it survives winnowing by chance)."""
    return np.array(sorted(fingerprint("release.py", given, np.array([]), keep, window=1).hashes), dtype=np.int64)


def drop_common(prints: list[CodeFingerprint], share: float) -> None:
    """Remove fingerprints found in more than `share` of the submissions (MOSS's -m: a passage nearly
    everyone wrote is the problem's natural solution, not a copy), in place."""
    counts = Counter(h for fp in prints for h in fp.hashes)
    common = {h for h, n in counts.items() if n > max(share * len(prints), 2)}
    for fp in prints:
        if fp.hashes & common:
            fp.hashes -= common
            fp.hash_idx = {h: i for h, i in fp.hash_idx.items() if h not in common}
            fp.token_coverage = get_token_coverage(fp.hash_idx, fp.k, len(fp.filtered_code))


@dataclass
class Pair:
    a: str
    b: str
    score: float             # the larger share: a copied part of a longer notebook still shows
    share_a: float           # of a's fingerprints, the share b has too
    share_b: float
    shared: int              # fingerprints (distinct k-grams) in common
    prints: tuple = ()       # the two CodeFingerprints, for the side-by-side view

    def summary(self) -> dict:
        return {"a": self.a, "b": self.b, "score": round(self.score, 3), "share_a": round(self.share_a, 3),
                "share_b": round(self.share_b, 3), "shared_fingerprints": self.shared}


def _shared_counts(prints: list[CodeFingerprint]) -> sparse.coo_matrix:
    """Upper triangle of the fingerprints-in-common count of every pair: one sparse matrix product."""
    vocabulary: dict[int, int] = {}
    rows, cols = [], []
    for i, fp in enumerate(prints):
        for h in fp.hashes:
            rows.append(i)
            cols.append(vocabulary.setdefault(h, len(vocabulary)))
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                               shape=(len(prints), max(len(vocabulary), 1)))
    return sparse.triu(matrix @ matrix.T, k=1).tocoo()


def similar_pairs(codes: dict[str, str], given: str, keep: set[str], threshold: float,
                  common: float = COMMON) -> tuple[list[Pair], np.ndarray, list[str]]:
    """The pairs at or above `threshold`, best first; every pair's score (pairs sharing nothing count 0
    and are left out); the students without own code to compare. `keep`: names never renamed.

    A pair's score is the larger of its two shares, a share being the part of one submission's
    fingerprints (k-grams of its filtered code, less the release's and the class's common ones) that
    the other has too; pairs with fewer than MIN_OVERLAP fingerprints in common score 0."""
    boilerplate = boilerplate_hashes(given, keep)
    names = sorted(codes)
    by_name = {n: fingerprint(f"{n}.py", codes[n], boilerplate, keep) for n in names}
    drop_common(list(by_name.values()), common)
    empty = [n for n in names if not by_name[n].hashes]
    names = [n for n in names if by_name[n].hashes]
    prints = [by_name[n] for n in names]
    shared = _shared_counts(prints)
    sizes = np.array([len(fp.hashes) for fp in prints] or [1])
    share_a, share_b = shared.data / sizes[shared.row], shared.data / sizes[shared.col]
    scores = np.where(shared.data >= MIN_OVERLAP, np.maximum(share_a, share_b), 0.0)
    pairs = [Pair(names[i], names[j], float(scores[n]), float(share_a[n]), float(share_b[n]), int(shared.data[n]),
                  (prints[i], prints[j])) for n in np.flatnonzero(scores >= threshold)
             for i, j in [(int(shared.row[n]), int(shared.col[n]))]]
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs, scores, empty


def _side_by_side(pair: Pair) -> str:
    """The two submissions' own code in two columns, the regions they share marked (copydetect)."""
    _, _, both_slices = compare_files(*pair.prints)
    columns = []
    for student, fp, slices in zip((pair.a, pair.b), pair.prints, both_slices):
        marked, _ = highlight_overlap(fp.raw_code, np.asarray(slices), "<mark>", "</mark>", escape_html=True)
        columns.append(f'<td style="width:50%"><b>{html.escape(student)}</b><pre>{marked}</pre></td>')
    return (f'<h3 id="{html.escape(pair.a)}--{html.escape(pair.b)}">{html.escape(pair.a)} and '
            f'{html.escape(pair.b)}: {pair.score:.0%}</h3><table><tr>{"".join(columns)}</tr></table>')


def lesson_page(lesson: str, flagged: list[Pair], scores: np.ndarray, compared: int, empty: list[str],
                threshold: float) -> str:
    rows = [[f"{p.score:.0%}", f'<a href="#{html.escape(p.a)}--{html.escape(p.b)}">{html.escape(p.a)}</a>',
             html.escape(p.b), f"{p.share_a:.0%}", f"{p.share_b:.0%}", p.shared] for p in flagged]
    plot = score_distribution(scores.tolist(), threshold, f"{lesson}: pairs sharing any fingerprint")
    shown = "".join(_side_by_side(p) for p in flagged[:SHOWN])
    more = f"<p>{len(flagged) - SHOWN} more pairs are in the table and similarity.json.</p>" if len(flagged) > SHOWN else ""
    blank = (f"<p>Not compared (no code of their own beyond the release): {html.escape(', '.join(empty))}</p>"
             if empty else "")
    return page(f"{lesson}: similarity", f"""<p><a href="index.html">class report</a></p>
<h1>{html.escape(lesson)}: similar submissions</h1>
<p class="warn">A flag is a reason for a person to look, not evidence of copying: short or standard solutions
(written from the same formula, the same hint) are alike by nature, and a student may have been copied from
without knowing. See docs/grading.md, "Similarity check", for what this check can and cannot catch.</p>
<p>{compared} submissions with code of their own, {compared * (compared - 1) // 2} pairs; {len(flagged)} at or
above the threshold {threshold:g}. A share is the part of one submission's fingerprints (its own code with names
it binds, comments, whitespace, strings, the release's code and what most of the class wrote left out) that the
other submission has too; the score is the larger share.</p>{blank}
<img alt="pair similarity distribution" src="{plot}">
{table(["score", "student a", "student b", "share of a", "share of b", "fingerprints in common"], rows,
       {0, 3, 4, 5})}
{shown}{more}""")


def write_similarity(found: ClassResults, out: Path, threshold: float, release_of=None) -> dict:
    """similarity-<lesson>.html per lesson with results and similarity.json in `out`; returns the JSON."""
    from autograder.grader.course import Course
    release_of = release_of or Course().release_notebook
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for lesson in found.lessons:
        subs = [s for s in found.by_lesson.get(lesson, []) if s.notebook is not None]
        if not subs:
            continue
        release = release_of(lesson)
        keep = {grade_id(c) for c in code_cells(release) if is_solution(c)} - {None}
        codes = {s.student: own_code(s) for s in subs}
        flagged, scores, empty = similar_pairs(codes, given_code(release), keep, threshold)
        compared = len(codes) - len(empty)
        (out / f"similarity-{lesson}.html").write_text(lesson_page(lesson, flagged, scores, compared, empty, threshold))
        summary[lesson] = {"threshold": threshold, "compared": compared, "pairs": compared * (compared - 1) // 2,
                           "not_compared": empty, "flagged": [p.summary() for p in flagged]}
    (out / "similarity.json").write_text(json.dumps(summary, indent=1))
    return summary
