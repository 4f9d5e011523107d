# ConvLab: every command a student, instructor or CI needs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORK ?= autograder/work
SUBMITTED ?= $(WORK)/submitted
JOBS ?= $(shell nproc)

.PHONY: help venv lab test release check-release samples autograde feedback grades bench system-deps oracle clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or pass PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)  ## create .venv with the pinned packages (done by lab and test when missing)

lab: $(STAMP)  ## start JupyterLab on the student release in course/
	$(VENV)/bin/jupyter lab --notebook-dir=course $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)  ## run every test (release drift, notebooks, grader, widgets, browser)
	$(PY) -m pytest

system-deps:  ## apt-get the sandbox (bubblewrap) and the browser for the browser check (as root)
	@missing=""; command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

oracle: $(STAMP)  ## optional: PyTorch CPU into .venv, for the oracle tests and the benchmark (never a course dependency)
	$(PY) -m pip install -q torch==2.13.0

release: $(STAMP)  ## rebuild course/ from solutions/ with nbgrader generate_assignment
	$(PY) -m autograder.build release

check-release: $(STAMP)  ## fail if course/ differs from a fresh build
	$(PY) -m autograder.build check

samples: $(STAMP)  ## put the shipped sample submissions into $(SUBMITTED), as if collected
	$(PY) -m autograder.samples --out $(SUBMITTED)

autograde: $(STAMP)  ## grade every submission under $(SUBMITTED), $(JOBS) at a time, in the sandbox
	$(PY) -m autograder.grade autograde --submitted $(SUBMITTED) --work $(WORK) --jobs $(JOBS)

feedback: $(STAMP)  ## write one HTML feedback file per student and lesson
	$(PY) -m autograder.grade feedback --work $(WORK)

grades: $(STAMP)  ## export the gradebook as $(WORK)/grades.csv
	$(PY) -m autograder.grade grades --work $(WORK)

bench: $(STAMP)  ## measure vectorized vs naive vs PyTorch, grading throughput, notebook run times
	$(PY) -m bench

clean:  ## remove build outputs and grading work (keeps .venv)
	rm -rf build $(WORK) test-artifacts
