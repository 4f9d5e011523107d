"""The learners' explorer for real: Voilà on 127.0.0.1 serving the built pages, every page opened in
headless Debian Chromium (the browser fixture of test_browser.py), a slider of every widget moved
and the rendered output checked to change. Screenshots and the slider-to-redraw latencies land in
test-artifacts/explorer/ (latency is reported, not asserted: performance goals belong to `make bench`).
"""
from __future__ import annotations

import json
import re
import time

import jupytext
import numpy as np
import pytest

from autograder import build
from autograder.tests.test_leaks import _secrets
from explorer.serve import build_pages, page_sources, voila_command
from tests.serving import serving
from tests.test_browser import _RENDERED, _free_port, browser  # noqa: F401 - browser is a fixture

ARTIFACTS = build.ROOT / "test-artifacts" / "explorer"
MOVES_PER_WIDGET = 10
CULL_AFTER_S = 10         # a closed page's kernel ends this long after (make explore: 60 s)
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """Voilà on a fresh build of the pages; yields (base_url, path of its log)."""
    folder = tmp_path_factory.mktemp("explorer")
    build_pages(folder)
    port, log_path = _free_port(), folder / "voila.log"
    base = f"http://127.0.0.1:{port}"
    with serving(voila_command(folder, port, cull_after_s=CULL_AFTER_S), base + "/", log_path, "Voilà", cwd=folder):
        yield base, log_path


@pytest.fixture(scope="module")
def latencies():
    """Slider-to-redraw times in ms per page, written with their p50/p95 when the module ends."""
    samples: dict[str, list[float]] = {}
    yield samples
    every = [t for page in samples.values() for t in page]
    if every:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        summary = {"p50_ms": float(np.percentile(every, 50)), "p95_ms": float(np.percentile(every, 95)),
                   "goal_p95_ms": 50, "samples": len(every), "per_page_ms": samples}
        (ARTIFACTS / "latency.json").write_text(json.dumps(summary, indent=1))
        print(f"\nexplorer slider-to-redraw latency over {len(every)} moves: p50 {summary['p50_ms']:.0f} ms, "
              f"p95 {summary['p95_ms']:.0f} ms (goal p95 <= 50 ms); {ARTIFACTS / 'latency.json'}")


def _code_lines(source) -> list[str]:
    """The page's code, line by line (lines long enough to be recognised)."""
    return [line.strip() for cell in jupytext.read(source).cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if len(line.strip()) >= 12]


# Resolves window.__redraw with the ms from the next keydown in widget w to the first DOM change of
# what it renders (not the sliders' own readouts); whether the content changed is checked after.
_TIMED_MOVE = """w => { window.__redraw = new Promise(resolve => {
    let start = null;
    const inControl = node => (node.nodeType === 1 ? node : node.parentElement).closest('.widget-slider, .widget-play');
    const observer = new MutationObserver(records => {
        if (start !== null && records.some(r => !inControl(r.target))) {
            observer.disconnect(); resolve(performance.now() - start);
        }
    });
    observer.observe(w, {subtree: true, childList: true, characterData: true, attributes: true});
    w.addEventListener('keydown', () => { start = start ?? performance.now(); }, {capture: true, once: true});
    setTimeout(() => { observer.disconnect(); resolve(null); }, 10000);
}); }"""


@pytest.mark.parametrize("source", page_sources(), ids=lambda p: p.stem)
def test_page_renders_its_widgets_without_code_and_each_reacts_to_a_slider(explorer, browser, latencies, source):
    base, log_path = explorer
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{base}/voila/render/{source.stem}.ipynb")
        page.locator(".convlab-widget").first.wait_for(state="visible")
        page.wait_for_load_state("networkidle")
        html = page.content()
        shown = [line for line in _code_lines(source) if line in html]
        assert not shown, f"{source.stem} shows its code: {shown}"
        assert not [s for s in _secrets() if s in html], f"{source.stem} shows solution or hidden-check text"
        assert "What to try" in page.inner_text("body"), f"{source.stem} does not say what to try"
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], .jp-OutputArea-output .jp-mod-error")
        assert errors.count() == 0, f"{source.stem} shows errors: {errors.all_inner_texts()}"
        widgets = page.locator(".convlab-widget")
        expected = sum(cell.cell_type == "code" for cell in jupytext.read(source).cells)   # one widget each
        assert widgets.count() == expected, f"{source.stem}: {widgets.count()} widgets rendered, {expected} expected"
        page.screenshot(path=str(ARTIFACTS / f"{source.stem}-page.png"), full_page=True)
        times = latencies.setdefault(source.stem, [])
        for k in range(widgets.count()):
            widget = widgets.nth(k)
            widget.scroll_into_view_if_needed()
            first = widget.evaluate(_RENDERED)
            assert first.strip(), f"{source.stem} widget {k} renders nothing"
            handle = widget.locator(".widget-slider .noUi-handle").first
            for move in range(MOVES_PER_WIDGET):
                before = widget.evaluate(_RENDERED)
                widget.evaluate(_TIMED_MOVE)
                handle.focus()
                page.keyboard.press("ArrowRight" if move % 2 == 0 else "ArrowLeft")
                elapsed = page.evaluate("window.__redraw")
                assert elapsed is not None and widget.evaluate(_RENDERED) != before, \
                    f"{source.stem} widget {k}: moving its first slider did not change what it renders"
                times.append(round(elapsed, 1))
                if move == 0:
                    widget.screenshot(path=str(ARTIFACTS / f"{source.stem}-widget{k}-moved.png"))
    finally:
        page.close()


def test_every_page_opened_gets_a_kernel_of_its_own(explorer, browser):
    """Voilà starts one kernel per page view and ends it with the page: no state carries over."""
    base, log_path = explorer
    started_before = re.findall(r"Kernel started: ([0-9a-f-]+)", log_path.read_text())
    context = browser.new_context()
    try:
        for source in page_sources()[:2] + page_sources()[:1]:      # two pages, then the first again
            page = context.new_page()
            page.goto(f"{base}/voila/render/{source.stem}.ipynb")
            page.locator(".convlab-widget").first.wait_for(state="visible", timeout=90_000)
            page.close()
    finally:
        context.close()
    started = re.findall(r"Kernel started: ([0-9a-f-]+)", log_path.read_text())[len(started_before):]
    assert len(started) == 3 and len(set(started)) == 3, f"3 page views started the kernels {started}"
    for _ in range(2 * (CULL_AFTER_S + 20)):   # and each kernel ends once its page is closed
        if set(started) <= set(re.findall(r"Kernel shutdown: ([0-9a-f-]+)", log_path.read_text())):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"kernels of closed pages still running {CULL_AFTER_S + 20} s later: {started}")


def test_without_javascript_a_page_says_what_it_shows(explorer, browser):
    base, _ = explorer
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{base}/voila/render/{page_sources()[0].stem}.ipynb", timeout=90_000)
        notice = page.get_by_text("This page needs JavaScript")
        assert notice.is_visible(), "no notice that the page needs JavaScript"
        assert page.get_by_text("What to try").is_visible()
        page.screenshot(path=str(ARTIFACTS / "no-javascript.png"))
    finally:
        context.close()
