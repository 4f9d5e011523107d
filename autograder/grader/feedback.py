"""The feedback page a student reads, rendered by nbconvert's HTMLExporter with ConvLab's template
(templates/convlab_feedback, an extension of nbconvert's lab template): the score table first, each
row linking to its cell, then the notebook as it ran, markdown rendered and figures shown, the locked
test cells collapsed and the student's own cells marked.

Built from result.json and the executed notebook only (release cells and the student's own), so it
can show nothing of the hidden checks or the references beyond the messages. Everything the
submission produced is escaped: the template escapes the result's fields, nbconvert the outputs,
and a student's markdown (a written answer) has its HTML escaped before it is rendered, so it
cannot put a script into the page; the release's own markdown is rendered as it is. Formulas are
MathML (mathml.py), so the page needs no script and no network to show them.
"""
from __future__ import annotations

import datetime
import html
from pathlib import Path

import nbformat
from jinja2 import pass_context
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from autograder.grader import mathml

TEMPLATES = Path(__file__).resolve().parent / "templates"
YOURS = {"student": "your code", "added": "your added cell", "edited": "your edit", "stub": "stub (not done)"}


def _number(value: float) -> str:
    return f"{value:g}"


def _rows(result: dict) -> list[dict]:
    rows = []
    for part in result["parts"]:
        pending = bool(part.get("needs_manual_grade"))
        rows.append({"grade_id": part["grade_id"], "points": _number(part["points"]),
                     "score": "–" if pending else _number(part["score"]), "message": part["message"] or "passed",
                     "state": "pending" if pending else "pass" if part["score"] == part["points"] else "fail"})
    return rows


def _late(result: dict) -> dict | None:
    late = result.get("late") or {}
    if not late.get("seconds_late"):
        return None
    return {"timestamp": late["timestamp"], "due": late["due"], "penalty": _number(late["penalty"]),
            "after": str(datetime.timedelta(seconds=round(late["seconds_late"])))}


class _MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with each formula as MathML. `tex` turns a formula's source as the
    renderer sees it back into TeX: the student's markdown reaches it HTML-escaped (see render)."""

    def __init__(self, tex, **options):
        super().__init__(**options)
        self.tex = tex

    def block_math(self, body: str) -> str:
        return mathml.formula(self.tex(body), display=True)

    def inline_math(self, body: str) -> str:
        return mathml.formula(self.tex(body), display=False)

    def latex_environment(self, name: str, body: str) -> str:
        return mathml.formula(self.tex(f"\\begin{{{name}}}{body}\\end{{{name}}}"), display=True)


class _FeedbackExporter(HTMLExporter):
    @pass_context
    def markdown2html(self, context, source: str) -> str:
        cell = context.get("cell", {})
        escaped = cell.get("metadata", {}).get("convlab_origin") in YOURS
        renderer = _MathMLRenderer(html.unescape if escaped else str, escape=False,
                                   attachments=cell.get("attachments", {}), anchor_link_text=self.anchor_link_text,
                                   exclude_anchor_links=self.exclude_anchor_links)
        return MarkdownWithMath(renderer=renderer).render(source)


def render(result: dict, nb: dict) -> str:
    """The page for one result and its executed notebook (JSON)."""
    exporter = _FeedbackExporter(template_name="convlab_feedback", extra_template_basedirs=[str(TEMPLATES)],
                                 exclude_input_prompt=False)
    notebook = nbformat.from_dict(nb if nb.get("cells") else {**nb, "cells": []})
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.metadata.get("convlab_origin") in YOURS:
            cell.source = html.escape(cell.source, quote=False)
    notebook.setdefault("metadata", {}).setdefault("language_info", {"name": "python"})
    notebook.setdefault("nbformat", 4)
    notebook.setdefault("nbformat_minor", 5)
    convlab = {"lesson": result["lesson"], "student": result["student"], "score": _number(result["score"]),
               "max_score": _number(result["max_score"]), "pending": _number(result.get("pending") or 0)
               if result.get("pending") else "", "total": _number(result.get("total", result["score"])),
               "late": _late(result), "rows": _rows(result), "notes": result["notes"],
               "console": result.get("console", ""), "yours": YOURS,
               "scores": {r["grade_id"]: f"{r['score']} / {r['points']}" for r in _rows(result)}}
    body, _ = exporter.from_notebook_node(notebook, resources={"convlab": convlab})
    return body
