"""Formulas on the feedback page: MathML rendered by the browser, with no MathJax and no network, every
formula of every lesson converted, and a student's formulas unable to put markup into the page."""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import nbformat
import pytest

from autograder.coursedir import COURSE, lessons
from autograder.grader import feedback, mathml

# what latex2mathml passes through unescaped (autograder/grader/mathml.py), and raw HTML around a formula
ATTACKS = [r"$\text{<script>alert(1)</script>}$", r"$\href{javascript:alert(1)}{x}$",
           r"$\style{background:url(javascript:alert(1))}{x}$", r"$\class{jp-x}{y}$",
           r"$$\text{</math><img src=x onerror=alert(1)>}$$", "<img src=x onerror=alert(1)> $a<b$"]


def _page(cells: list) -> str:
    result = {"student": "amy", "lesson": "01_conv_forward", "score": 0, "max_score": 0, "parts": [], "notes": []}
    return feedback.render(result, nbformat.v4.new_notebook(cells=cells))


def _markdown(source: str, origin: str) -> dict:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["convlab_origin"] = origin
    return cell


@pytest.mark.parametrize("lesson", lessons())
def test_every_formula_of_the_lesson_is_mathml_on_a_page_that_loads_nothing_from_the_network(lesson):
    nb = nbformat.read(COURSE / lesson / f"{lesson}.ipynb", as_version=4)
    cells = [_markdown(c.source, "release") for c in nb.cells if c.cell_type == "markdown"]
    page = _page(cells)
    shown_as_tex = re.findall(r'<code class="convlab-tex">(.*?)</code>', page, flags=re.S)
    assert not shown_as_tex, f"{len(shown_as_tex)} formulas did not convert, e.g. {html.unescape(shown_as_tex[0])}"
    assert page.count("<math ") >= sum(c.source.count("$") for c in cells) // 4   # at least one per $..$ pair, halved
    assert "mathjax" not in page.lower() and "cdnjs" not in page   # nothing loaded from a CDN
    assert not re.search(r"""(src|href)=["']?https?:|import\(["']https?:""", page)


def test_tex_escapes_inside_text_print_the_character():
    # latex2mathml keeps "\_" inside \text{}; TeX and MathJax print "_"
    assert "<mtext>one_hot</mtext>" in mathml.formula(r"\text{one\_hot}(y)", display=False)
    assert "<mtext>50%</mtext>" in mathml.formula(r"\text{50\%}", display=False)


@pytest.mark.parametrize("tex", [r"\frac{1}{", r"\url{x} < y", r"\begin{gathered} a & b \end{gathered}"])
def test_a_formula_latex2mathml_cannot_render_is_shown_as_its_tex(tex):
    # a parse error; a command it does not know (it would show "\url"); an environment it writes as "<mi>&</mi>"
    assert mathml.formula(tex, display=True) == f'<code class="convlab-tex">$${html.escape(tex)}$$</code>'


def test_what_latex2mathml_does_not_know_is_rendered_as_tex_would():
    assert "<mtable" in mathml.formula(r"\begin{aligned} a &= b \\ c &= d \end{aligned}", display=True)
    assert "<mo>arg</mo>" in mathml.formula(r"\arg\max_i x_i", display=True)


@pytest.mark.parametrize("source", ATTACKS)
def test_a_students_formula_cannot_put_markup_or_links_into_the_page(source):
    page = _page([_markdown(source, "student")])
    answer = page[page.index("your answer"):]
    assert not re.search(r"<(script|img|a)\b", answer) and "href" not in answer and "style=" not in answer
    assert 'class="jp-x"' not in answer
    assert "<math" in answer or "convlab-tex" in answer or "&lt;img" in answer


def test_a_students_formula_renders_with_its_own_less_than_sign():
    # the student's markdown is HTML-escaped before rendering; the formula is turned back into their TeX
    page = _page([_markdown(r"Since $a<b$, $\frac{1}{2}$.", "student")])
    maths = re.findall(r"<math .*?</math>", page, flags=re.S)
    assert len(maths) == 2 and "<mo>&lt;</mo>" in maths[0] and "<mfrac>" in maths[1]
    for math in maths:
        ET.fromstring(math)   # well-formed MathML
