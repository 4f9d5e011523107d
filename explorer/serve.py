"""Build the explorer's pages and serve them with Voilà: `python -m explorer.serve [--port N]`.

The pages' single source is the jupytext percent files explorer/NN_topic.py; each run writes them
as notebooks into build/explorer/ (git-ignored, so there is nothing generated to drift), with the
no-JavaScript notice as their first cell. Voilà runs every page in a kernel of its own, started
when the page is opened, and shows no code cells.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jupytext
import nbformat

SOURCES = Path(__file__).resolve().parent
ROOT = SOURCES.parent
BUILD = ROOT / "build" / "explorer"
PORT = 8866
# Voilà's page keeps its cells hidden behind a spinner until its JavaScript runs; without JavaScript
# the style in <noscript> shows the text cells, and the notice says what is missing.
NO_JAVASCRIPT = ("<noscript><style>#rendered_cells { display: block !important; } #loading { display: none !important; }"
                 "</style><p><b>This page needs JavaScript.</b> Without it you see only the text: the "
                 "sliders and the pictures they redraw are live widgets, computed by a Python kernel that "
                 "JavaScript talks to. Turn JavaScript on and reload, or open the same widget in its lesson "
                 "notebook (<code>make lab</code>).</p></noscript>")


def page_sources() -> list[Path]:
    """The pages' jupytext sources, in the order the explorer lists them."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def build_pages(out: Path = BUILD) -> list[Path]:
    """Write every page as out/NN_topic.ipynb (replacing what was there); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.ipynb"):
        stale.unlink()
    pages = []
    for source in page_sources():
        notebook = jupytext.read(source)
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(NO_JAVASCRIPT))
        pages.append(out / f"{source.stem}.ipynb")
        nbformat.write(notebook, pages[-1])
    return pages


def voila_command(folder: Path, port: int, cull_after_s: int = 60) -> list[str]:
    """Voilà serving every notebook of `folder` on 127.0.0.1 only, sources stripped, no browser opened.
    A page's kernel is ended `cull_after_s` seconds after the page was closed (Voilà leaves it running
    otherwise, so a learner browsing the pages would pile up kernels); open pages keep theirs."""
    return [sys.executable, "-m", "voila", str(folder), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
            "--strip_sources=True", "--VoilaConfiguration.show_tracebacks=False",
            f"--MappingKernelManager.cull_idle_timeout={cull_after_s}",
            f"--MappingKernelManager.cull_interval={max(cull_after_s // 6, 1)}",
            "--MappingKernelManager.cull_connected=False"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args(argv)
    pages = build_pages()
    print(f"{len(pages)} explorer pages in {BUILD.relative_to(ROOT)}; open http://127.0.0.1:{args.port}/ "
          "(Ctrl+C stops the server)", flush=True)
    command = voila_command(BUILD, args.port)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
