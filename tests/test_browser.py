"""The lessons in a real browser: JupyterLab in headless Debian Chromium, driven by Playwright.

For each lesson the release notebook, with the stubs filled in as a student who finished would
have them, is opened in JupyterLab, every cell is run (Run > Run All Cells), the notebook must hold
no error output, and moving a slider of the first ConvLab widget must change what it renders.
Screenshots land in test-artifacts/browser/. Chromium comes from Debian (`make system-deps`);
Playwright never downloads a browser. Outside CI the test skips when Chromium is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder import coursedir
from autograder.grader.course import Course
from autograder.grader.spec import Sample
from autograder.samples import build_sample
from tests.serving import serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = coursedir.ROOT / "test-artifacts" / "browser"
pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} not installed (make system-deps)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a scratch copy of the lessons; yields (base_url, token, root)."""
    root = tmp_path_factory.mktemp("lab")
    port, token = _free_port(), "convlab-browser-check"
    settings = root / ".lab-settings"   # no "get Jupyter news?" toast over the widgets in screenshots
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ, CONVLAB_FAST="1", JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(settings))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    base = f"http://127.0.0.1:{port}"
    with serving(command, f"{base}/api/status?token={token}", root / "jupyterlab.log", "JupyterLab", env=env):
        yield base, token, root


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


# Text a widget renders (HTML/SVG/images/output areas), not the controls' own readouts.
_RENDERED = """w => Array.from(w.querySelectorAll(
    '.widget-html-content, .jp-OutputArea-output, .widget-image, svg, img'))
    .filter(e => !e.closest('.widget-slider, .widget-play'))
    .map(e => e.outerHTML).join('\\n')"""


@pytest.mark.parametrize("lesson", coursedir.lessons())
def test_lesson_runs_in_jupyterlab_and_its_widget_reacts_to_a_slider(lab, browser, lesson):
    base, token, root = lab
    path = root / lesson / f"{lesson}.ipynb"
    path.parent.mkdir()
    path.write_bytes(build_sample(Course(), lesson, Sample(base="solution")))   # a finished student's notebook
    with _notebook_page(browser, base, token, path.relative_to(root), lesson) as page:
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        _wait_until_executed(page, timeout_s=240)
        nb = _save(page, path)
        errors = _error_outputs(nb)
        assert not errors, f"{lesson}: cells raised errors in JupyterLab:\n" + "\n".join(errors)
        unrun = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and not c.get("execution_count")]
        assert not unrun, f"{lesson}: cells {unrun} did not run"
        _assert_first_widget_reacts_to_a_slider(page, lesson)


def test_untouched_lesson_01_shows_its_widget_on_the_fallback(lab, browser):
    """A student who has written nothing yet runs the cells one by one (Shift+Enter, past the failing
    tests) and still gets a working kernel-sliding widget, computed by its own dot products."""
    base, token, root = lab
    lesson = "01_conv_forward"
    path = root / "untouched" / f"{lesson}.ipynb"
    path.parent.mkdir()
    shutil.copy(coursedir.COURSE / lesson / f"{lesson}.ipynb", path)
    with _notebook_page(browser, base, token, path.relative_to(root), "untouched") as page:
        page.locator(".jp-Notebook .jp-Cell").first.click()
        for _ in range(80):
            page.keyboard.press("Shift+Enter")
            page.wait_for_timeout(300)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            if page.locator(".convlab-widget").count():
                break
        widget = page.locator(".convlab-widget").first
        widget.wait_for(state="visible", timeout=30_000)
        assert "own dot product" in widget.inner_text(), "the widget does not say it shows its own dot products"
        _assert_first_widget_reacts_to_a_slider(page, "01_conv_forward-untouched")


@contextmanager
def _notebook_page(browser, base: str, token: str, relpath: Path, name: str):
    """A fresh page (and JupyterLab workspace) with the notebook open and its kernel idle."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{base}/lab/workspaces/{name}/tree/{relpath.as_posix()}?token={token}&reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        _accept_kernel_dialog(page)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        yield page
    finally:
        page.screenshot(path=str(ARTIFACTS / f"{name}-page.png"))
        page.close()


def _assert_first_widget_reacts_to_a_slider(page, name: str) -> None:
    widget = page.locator(".convlab-widget").first
    try:
        widget.wait_for(state="visible", timeout=30_000)
    except Exception as exc:  # playwright TimeoutError; imported lazily, as the browser fixture does
        if type(exc).__name__ != "TimeoutError":
            raise
        raise AssertionError(f"{name}: no convlab widget became visible within 30 s: rule 'a widget' "
                             "(docs/authoring.md) asks every lesson to show one, with a slider") from None
    widget.scroll_into_view_if_needed()
    before = widget.evaluate(_RENDERED)
    assert before.strip(), f"{name}: the widget renders nothing"
    widget.screenshot(path=str(ARTIFACTS / f"{name}-widget-before.png"))
    handle = widget.locator(".widget-slider .noUi-handle").first
    for key in ("ArrowRight", "ArrowLeft", "ArrowLeft"):
        handle.focus()
        page.keyboard.press(key)
        page.wait_for_timeout(1500)
        after = widget.evaluate(_RENDERED)
        if after != before:
            break
    widget.screenshot(path=str(ARTIFACTS / f"{name}-widget-after.png"))
    assert after != before, f"{name}: moving the widget's first slider did not change what it renders"


def _accept_kernel_dialog(page) -> None:
    """JupyterLab sometimes asks which kernel to start even for a notebook that names one: accept."""
    try:
        page.wait_for_selector(".jp-Dialog .jp-mod-accept", timeout=5_000)
    except Exception:  # noqa: BLE001 - no dialog is the normal case
        return
    page.click(".jp-Dialog .jp-mod-accept")


def _wait_until_executed(page, timeout_s: float) -> None:
    """Wait until the kernel has been idle for 5 s (Run All stops at an error) or every cell ran."""
    deadline, idle_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        pending = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'))
            .filter(p => !/\\[\\d+\\]/.test(p.textContent)).length""")
        if page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count():
            idle_since = idle_since or time.monotonic()
            if pending == 0 or time.monotonic() - idle_since > 5:
                return
        else:
            idle_since = None
        time.sleep(1)
    raise AssertionError(f"the notebook was still running after {timeout_s} s")


def _save(page, path: Path) -> dict:
    """Save the notebook from the browser and return it once the file on disk has the outputs."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    for _ in range(40):
        try:
            nb = json.loads(path.read_text())
        except json.JSONDecodeError:       # caught while JupyterLab was still writing it
            nb = {"cells": []}
        if any(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"):
            return nb
        time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not save {path.name} with its outputs")


def _error_outputs(nb: dict) -> list[str]:
    return [f"cell {i}: {out.get('ename')}: {out.get('evalue')}" for i, cell in enumerate(nb["cells"])
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]
