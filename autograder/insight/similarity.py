"""Pairs of submissions of one lesson whose own code is alike, for a human to look at.

A submission's own code is what the grader found the student wrote: its solution cells that differ
from the stubs and the cells it added (origins "student" and "added" in the executed notebook), in
notebook order. Each cell is tokenized with the standard `tokenize` module; comments and whitespace
vanish, strings become S, and the names the code binds itself (variables, parameters, helpers)
become V, while the names it uses from numpy, Python and the course stay, so that renaming does
not hide a copy but two programs that call different functions still differ.

A fingerprint is a k-gram (NOISE filtered characters) of that text, hashed by copydetect
(https://github.com/blingenf/copydetect, `hashed_kgrams`); every k-gram is kept (winnowing window 1),
so scores do not depend on Python's per-process string hashes. Removed as boilerplate: every
k-gram of the release's code cells (signatures, docstrings, provided code) and, like MOSS's -m
option, k-grams more than COMMON of the lesson's submissions share (what nearly everyone writes).
A pair's share of a is the part of a's fingerprints that b has too; its score is the larger of
the two shares. All pairs are scored at once with one sparse matrix product (scipy); copydetect's
`compare_files` and `highlight_overlap` mark the shared regions of the pairs shown side by side.
"""
from __future__ import annotations

import ast
import functools
import html
import io
import json
import keyword
import multiprocessing
import os
import tokenize
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import hashed_kgrams, highlight_overlap
from scipy import sparse

from autograder.coursedir import grade_id, is_solution
from autograder.insight.figures import score_distribution
from autograder.insight.load import ClassResults, Submission, code_cells, source
from autograder.insight.report import page, table

NOISE = 25               # k: filtered characters per k-gram; shorter matches are never counted
MIN_OVERLAP = 80         # fingerprints in common below which a pair scores 0
DEFAULT_THRESHOLD = 0.5  # documented in docs/grading.md, measured by autograder/tests/test_insight.py
COMMON = 0.5             # fingerprints in more than this share of a lesson's submissions are ignored
PARALLEL_FROM = 100      # submissions from which filtering uses every core
SHOWN = 40               # flagged pairs shown side by side on a page (all are in the table and JSON)
OWN = ("student", "added")
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
         tokenize.ENDMARKER}
_STRINGS = {tokenize.STRING, *(getattr(tokenize, t) for t in ("FSTRING_MIDDLE",) if hasattr(tokenize, t))}


def own_cells(sub: Submission) -> list[tuple[str, str]]:
    """(heading, source) of each of the student's own cells, in notebook order."""
    return [(grade_id(cell) or "a cell the student added", source(cell)) for cell in sub.cells(OWN)]


def given_code(release: dict) -> list[tuple[str, str]]:
    """Every code cell of the release: what all students were handed."""
    return [("release", source(c)) for c in code_cells(release)]


def bound_names(code: str) -> set[str]:
    """Names the code binds (assigned, parameters, loop targets, defined); for code that does not
    parse, every name that is not a keyword."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return {t.string for t in _tokens(code) if t.type == tokenize.NAME and not keyword.iskeyword(t.string)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
    return found


def _tokens(code: str) -> list[tokenize.TokenInfo]:
    """The tokens up to the first one tokenize cannot read (the rest of a broken cell is left out)."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            out.append(tok)
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


@dataclass
class Filtered:
    """A submission's own code (`raw`, cells under comment headings) and its filtered text, with the
    raw span each filtered character came from."""
    raw: str
    text: str
    raw_start: np.ndarray
    raw_end: np.ndarray

    def raw_slices(self, slices: np.ndarray) -> np.ndarray:
        """copydetect's 2xN filtered-text slices as slices of `raw`."""
        slices = np.asarray(slices, dtype=np.int64).reshape(2, -1)
        return np.array([self.raw_start[slices[0]], self.raw_end[slices[1] - 1]])


def filter_cells(cells: list[tuple[str, str]], keep: set[str]) -> Filtered:
    raw_parts, text, starts, ends, base = [], [], [], [], 0
    for heading, code in cells:
        header = f"# ── {heading} ──\n"
        base += len(header)
        line_starts = np.cumsum([0, *map(len, code.splitlines(keepends=True))])
        rename = bound_names(code) - keep
        previous = ""
        for tok in _tokens(code):
            if tok.type in _SKIP:
                continue
            if tok.type in _STRINGS:
                piece = "S"
            elif tok.type == tokenize.NAME and tok.string in rename and previous != ".":
                piece = "V"
            else:
                piece = tok.string
            start = base + line_starts[tok.start[0] - 1] + tok.start[1]
            end = base + line_starts[tok.end[0] - 1] + tok.end[1]
            text.append(piece)
            starts += [start] * len(piece)
            ends += [end] * len(piece)
            previous = tok.string
        raw_parts.append(header + code + "\n\n")
        base += len(code) + 2
    return Filtered("".join(raw_parts), "".join(text), np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64))


def _filter_all(codes: list[list[tuple[str, str]]], keep: set[str]) -> list[Filtered]:
    """filter_cells of each, on every core for a large class (forked workers: nothing to re-import;
    the k-grams are hashed afterwards in this process, so one hash seed serves all)."""
    workers = min(os.cpu_count() or 1, 4)
    if len(codes) < PARALLEL_FROM or workers < 2:
        return [filter_cells(cells, keep) for cells in codes]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(functools.partial(filter_cells, keep=keep), codes, chunksize=32))


def kgrams(text: str) -> np.ndarray:
    """The sorted distinct k-gram hashes of a filtered text."""
    return np.unique(hashed_kgrams(text, NOISE)) if len(text) >= NOISE else np.array([], dtype=np.int64)


@dataclass
class Pair:
    a: str
    b: str
    score: float             # the larger share: a copied part of a longer notebook still shows
    share_a: float           # of a's fingerprints, the share b has too
    share_b: float
    shared: int              # fingerprints (distinct k-grams) in common

    def summary(self) -> dict:
        return {"a": self.a, "b": self.b, "score": round(self.score, 3), "share_a": round(self.share_a, 3),
                "share_b": round(self.share_b, 3), "shared_fingerprints": self.shared}


@dataclass
class Scored:
    flagged: list[Pair]          # at or above the threshold, best first
    scores: np.ndarray           # every pair sharing any fingerprint (for the distribution plot)
    empty: list[str]             # students with no fingerprint of their own: not compared
    filtered: dict[str, Filtered]
    ignored: np.ndarray          # the release's and the class's common fingerprints
    reference_share: dict[str, float]   # student -> share of its fingerprints in the instructor's solution


def similar_pairs(codes: dict[str, list[tuple[str, str]]], given: list[tuple[str, str]], keep: set[str],
                  threshold: float, common: float = COMMON, reference: list[tuple[str, str]] = ()) -> Scored:
    """Score every pair of `codes` (student -> own cells); `keep`: names never renamed (the graded ones).
    With `reference` (the instructor's solution cells), also each student's share of fingerprints that
    the reference has, common ones included: a solution most of the class copied still shows there."""
    boilerplate = kgrams(filter_cells(given, keep).text)
    solution = np.setdiff1d(kgrams(filter_cells(list(reference), keep).text), boilerplate, assume_unique=True)
    names = sorted(codes)
    filtered = dict(zip(names, _filter_all([codes[n] for n in names], keep)))
    prints = {n: np.setdiff1d(kgrams(filtered[n].text), boilerplate, assume_unique=True) for n in names}
    names = [n for n in names if len(prints[n])]
    empty = sorted(set(codes) - set(names))
    rows = np.repeat(np.arange(len(names)), [len(prints[n]) for n in names])
    values, columns, holders = np.unique(np.concatenate([prints[n] for n in names] or [np.array([], np.int64)]),
                                         return_inverse=True, return_counts=True)
    frequent = holders > max(common * len(names), 2)
    ignored = np.union1d(boilerplate, values[frequent])
    used = ~frequent[columns]
    matrix = sparse.csr_matrix((np.ones(used.sum(), dtype=np.int32), (rows[used], columns[used])),
                               shape=(len(names), max(len(values), 1)))
    sizes = np.maximum(np.asarray(matrix.sum(axis=1)).ravel(), 1)
    shared = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    share_a, share_b = shared.data / sizes[shared.row], shared.data / sizes[shared.col]
    scores = np.where(shared.data >= MIN_OVERLAP, np.maximum(share_a, share_b), 0.0)
    flagged = [Pair(names[shared.row[n]], names[shared.col[n]], float(scores[n]), float(share_a[n]),
                    float(share_b[n]), int(shared.data[n])) for n in np.flatnonzero(scores >= threshold)]
    flagged.sort(key=lambda p: (-p.score, p.a, p.b))
    from_reference = {n: float(np.isin(prints[n], solution, assume_unique=True).mean()) for n in names} \
        if len(solution) else {}
    return Scored(flagged, scores, empty, filtered, ignored, from_reference)


def _side_by_side(pair: Pair, scored: Scored) -> str:
    """The two submissions' own code in two columns, the regions they share marked (copydetect)."""
    a, b = (scored.filtered[n] for n in (pair.a, pair.b))
    prints = [CodeFingerprint(f"{n}.py", NOISE, 1, boilerplate=scored.ignored, filter=False, fp=io.StringIO(f.text))
              for n, f in ((pair.a, a), (pair.b, b))]
    _, _, slices = compare_files(*prints)
    columns = []
    for student, f, part in zip((pair.a, pair.b), (a, b), slices):
        marked = html.escape(f.raw)
        if np.size(part):
            marked, _ = highlight_overlap(f.raw, f.raw_slices(part), "<mark>", "</mark>", escape_html=True)
        columns.append(f'<td style="width:50%"><b>{html.escape(student)}</b><pre>{marked}</pre></td>')
    return (f'<h3 id="{html.escape(pair.a)}--{html.escape(pair.b)}">{html.escape(pair.a)} and '
            f'{html.escape(pair.b)}: {pair.score:.0%}</h3><table><tr>{"".join(columns)}</tr></table>')


def lesson_page(lesson: str, scored: Scored, compared: int, threshold: float) -> str:
    flagged, empty = scored.flagged, scored.empty
    rows = [[f"{p.score:.0%}", f'<a href="#{html.escape(p.a)}--{html.escape(p.b)}">{html.escape(p.a)}</a>',
             html.escape(p.b), f"{p.share_a:.0%}", f"{p.share_b:.0%}", p.shared] for p in flagged]
    plot = score_distribution(scored.scores.tolist(), threshold, f"{lesson}: pairs sharing any fingerprint")
    shown = "".join(_side_by_side(p, scored) for p in flagged[:SHOWN])
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
{_reference_table(scored.reference_share)}
{shown}{more}""")


def _reference_table(shares: dict[str, float]) -> str:
    """The submissions with the largest share of fingerprints the instructor's solution has too."""
    closest = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))[:SHOWN]
    return ("<h2>Closest to the instructor's solution</h2><p><small>The share of each submission's fingerprints "
            "that the reference solution has too, counting what most of the class shares (a leaked solution shows "
            "here even when most of the class used it). Independent correct solutions share some by nature. "
            "The reference itself is not shown.</small></p>"
            + table(["share", "student"], [[f"{v:.0%}", html.escape(k)] for k, v in closest], {0}))


def write_similarity(found: ClassResults, out: Path, threshold: float, release_of=None,
                     log=print, solutions_of=None) -> dict:
    """similarity-<lesson>.html per lesson with results and similarity.json in `out`; returns the JSON.
    A lesson whose release is missing is skipped with a line saying so (its given code is unknown)."""
    from autograder.grader.course import Course, CourseError
    release_of = release_of or Course().release_notebook
    solutions_of = solutions_of or (lambda lesson: list(Course().solution_sources(lesson).items()))
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for lesson in found.lessons:
        subs = [s for s in found.by_lesson.get(lesson, []) if s.notebook is not None]
        if not subs:
            continue
        try:
            release = release_of(lesson)
        except CourseError as exc:
            log(f"{lesson}: not compared: {exc}")
            continue
        keep = {grade_id(c) for c in code_cells(release) if is_solution(c)} - {None}
        codes = {s.student: own_cells(s) for s in subs}
        scored = similar_pairs(codes, given_code(release), keep, threshold, reference=solutions_of(lesson))
        compared = len(codes) - len(scored.empty)
        (out / f"similarity-{lesson}.html").write_text(lesson_page(lesson, scored, compared, threshold))
        summary[lesson] = {"threshold": threshold, "compared": compared, "pairs": compared * (compared - 1) // 2,
                           "not_compared": scored.empty, "flagged": [p.summary() for p in scored.flagged],
                           "share_in_reference": {k: round(v, 3) for k, v in sorted(scored.reference_share.items())}}
    (out / "similarity.json").write_text(json.dumps(summary, indent=1))
    return summary
