"""`make lab` (students) shows none of nbgrader's instructor tools and no news pop-up; `make
lab-instructor` serves the repository root with formgrader on the course and opens solutions/*.py
as notebooks (jupytext). Each runs the real make target, with a port and token added (LAB_ARGS)."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from autograder.tests.jupyter import JupyterServer

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
INSTRUCTOR_ONLY = {"@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:menu",
                   "@jupyter/nbgrader:course-list"}
NEWS = "@jupyterlab/apputils-extension:announcements"


def _make(target: str, env: dict, **wait) -> JupyterServer:
    # -o: the venv this test runs in counts as installed, so make runs only the target's own command
    return JupyterServer(["make", "-s", target, f"VENV={VENV}", "-o", f"{VENV}/.installed"], ROOT, env,
                         via_make=True, **wait)


def _page_config(server: JupyterServer) -> dict:
    page = server.get("/lab", raw=True)
    return json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                page, re.S).group(1))


def test_student_lab_hides_instructor_tools_and_news():
    server = _make("lab", dict(os.environ))
    try:
        disabled = set(_page_config(server)["disabledExtensions"])
        assert INSTRUCTOR_ONLY | {NEWS} <= disabled
        assert "@jupyter/nbgrader:assignment-list" not in disabled   # the students' own nbgrader panel stays
        assert server.status("/formgrader/api/status") == 404
        assert "01_conv_forward" in {item["name"] for item in server.get("/api/contents")["content"]}
    finally:
        server.stop()


def test_instructor_lab_serves_the_repository_with_formgrader_and_jupytext():

    server = _make("lab-instructor", dict(os.environ, WORK="autograder/work"), ready="/formgrader/api/status")
    try:
        assert NEWS in _page_config(server)["disabledExtensions"]
        assert not INSTRUCTOR_ONLY & set(_page_config(server)["disabledExtensions"])
        assert {"solutions", "course", "autograder"} <= {item["name"] for item in server.get("/api/contents")["content"]}
        viewers = server.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        assert viewers["schema"]["properties"]["defaultViewers"]["default"]["python"] == "Jupytext Notebook"
        assert isinstance(server.get("/formgrader/api/assignments"), list)   # the course config was found
        lesson = server.get("/api/contents/solutions/01_conv_forward.py?type=notebook")
        assert lesson["type"] == "notebook" and lesson["content"]["cells"]
    finally:
        server.stop()

