"""TeX formulas as MathML for the feedback pages, so they render in the browser with no script and no
network (MathML Core: Chromium 109+, Firefox, Safari). latex2mathml does the conversion; what it returns
is rebuilt element by element from an allow-list, because it passes some input through unescaped
(`\\text{<script>}` gives a `<script>` element, `\\href{javascript:...}` an href, `\\style` a style), and a
student writes formulas too. A formula that does not convert, converts to anything outside the list or
keeps a command latex2mathml does not know, is shown as its TeX source.
"""
from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import latex2mathml.converter

NS = "{http://www.w3.org/1998/Math/MathML}"
ELEMENTS = {"math", "mrow", "mi", "mn", "mo", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
            "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
            "menclose", "mfenced"}
ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "form", "separator", "minsize", "maxsize", "width",
              "height", "depth", "lspace", "rspace", "voffset", "notation", "columnalign", "columnlines",
              "columnspacing", "rowspacing", "rowlines", "scriptlevel", "displaystyle", "accent", "accentunder",
              "movablelimits", "linethickness", "mathcolor", "mathsize", "largeop", "symmetric"}
# what latex2mathml does not know, as what it knows that TeX renders the same way
UNKNOWN = [(re.compile(r"\\(begin|end)\{aligned\}"), r"\\\1{align*}"),
           (re.compile(r"\\arg(?![A-Za-z])"), r"\\operatorname{arg}")]
# latex2mathml keeps TeX's escapes inside \text{} ("one\_hot" stays "one\_hot"); TeX prints the character
TEXT_ESCAPE = re.compile(r"\\([_%#&${}])")


class Unsafe(ValueError):
    """latex2mathml produced something outside the allow-list, or a command's name as text."""


def _rebuilt(node: ET.Element) -> ET.Element:
    name = node.tag.removeprefix(NS)
    if name not in ELEMENTS:
        raise Unsafe(name)
    copy = ET.Element(name, {key: value for key, value in node.attrib.items() if key in ATTRIBUTES})
    copy.text = TEXT_ESCAPE.sub(r"\1", node.text) if name == "mtext" and node.text else node.text
    for child in node:
        copy.append(_rebuilt(child))
        copy[-1].tail = child.tail
    return copy


def formula(tex: str, display: bool) -> str:
    """The HTML for one formula (its TeX without delimiters): MathML, or the escaped TeX in a <code>."""
    known = tex
    for pattern, replacement in UNKNOWN:
        known = pattern.sub(replacement, known)
    try:
        math = _rebuilt(ET.fromstring(latex2mathml.converter.convert(known, display="block" if display else "inline")))
        if "\\" in "".join(math.itertext()):   # a command latex2mathml does not know shows as its name
            raise Unsafe("unknown command")
    except Exception:   # latex2mathml raises many kinds on input it cannot parse; any of them means "show the TeX"
        delimiter = "$$" if display else "$"
        return f'<code class="convlab-tex">{html.escape(delimiter + tex + delimiter)}</code>'
    math.set("xmlns", NS.strip("{}"))
    return ET.tostring(math, encoding="unicode", short_empty_elements=True)
