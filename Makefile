# ConvLab: every command a student, instructor or CI needs. `make help` lists them.
SHELL := /bin/bash
# The first of these that is Python 3.11 or newer (PYTHON=/path/to/python overrides it).
PYTHON_CANDIDATES := python3 python3.11 python3.12 python3.13 python3.14
PYTHON ?= $(shell for p in $(PYTHON_CANDIDATES); do $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORK ?= autograder/work
SUBMITTED ?= $(WORK)/submitted
JOBS ?= $(shell nproc)
# Extra options for `jupyter lab` in make lab and lab-instructor, e.g. LAB_ARGS=--port=9999
LAB_ARGS ?=
FAIRNESS_SEEDS ?= 10
# Root installs what `make test` needs itself; anyone else is told in one line what to run.
IS_ROOT ?= $(filter 0,$(shell id -u))
SYSTEM_TOOLS := bwrap:bubblewrap chromium:chromium
ifeq ($(IS_ROOT),)
ifneq ($(filter test,$(MAKECMDGOALS)),)
MISSING := $(foreach t,$(SYSTEM_TOOLS),$(if $(shell command -v $(firstword $(subst :, ,$(t))) 2>/dev/null),,$(lastword $(subst :, ,$(t)))))
ifneq ($(strip $(MISSING)),)
$(error make test needs the Debian packages $(strip $(MISSING)), which only root can install: run `sudo make system-deps`, then `make test` again)
endif
endif
endif

.PHONY: fairness help venv lab lab-instructor test release check-release samples autograde scheduler worker feedback grades report similarity bench system-deps oracle clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt requirements.lock pyproject.toml
	@[ -n "$(PYTHON)" ] || { echo "no Python 3.11 or newer found (tried $(PYTHON_CANDIDATES)): install one (Debian/Ubuntu: sudo apt-get install python3 python3-venv) or pass PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "PYTHON=$(PYTHON) is not Python 3.11 or newer: pass PYTHON=/path/to/python3.11 (or 3.12, 3.13)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)  ## create .venv with the pinned packages (done by lab and test when missing)

# The students' lab: jupyter/student/ hides nbgrader's instructor tools and the news pop-up.
lab: $(STAMP)  ## start JupyterLab on the student release in course/
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/student$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
		$(VENV)/bin/jupyter lab --notebook-dir=course $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The instructor's lab: solutions/*.py open as notebooks (jupytext), formgrader shows $(WORK)'s gradebook.
lab-instructor: $(STAMP)  ## start JupyterLab at the repository root, with jupytext and formgrader on $(WORK)
	@case "$(abspath $(WORK))/" in "$(CURDIR)/"*) ;; *) echo "WORK=$(WORK) must be inside $(CURDIR): formgrader only sees a course root below the folder JupyterLab serves"; exit 2;; esac
	mkdir -p $(WORK)
	CONVLAB_NBGRADER_ROOT=$(abspath $(WORK)) JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/instructor$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
		$(VENV)/bin/jupyter lab --notebook-dir=. --LabApp.app_settings_dir=$(CURDIR)/jupyter/instructor/settings \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

.PHONY: explore
explore: $(STAMP)  ## serve the learners' explorer (every widget, no code to write) with Voilà on 127.0.0.1
	$(PY) -m explorer.serve $(if $(PORT),--port $(PORT))

# As root: first installs bubblewrap and chromium (apt-get) and PyTorch (the oracle) when missing.
# Otherwise, if bubblewrap or chromium is missing, make stops before anything with one line (above).
# Then one line names the sandbox mode the grader tests will use (or says why there is none).
test: $(if $(IS_ROOT),system-deps oracle) $(STAMP)  ## run every test (release drift, notebooks, grader, widgets, browser)
	@$(PY) -m autograder.grade sandbox
	$(PY) -m pytest $(PYTEST_ARGS)

system-deps:  ## apt-get the sandbox (bubblewrap) and the browser for the browser check (as root)
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi

oracle: $(STAMP)  ## optional: PyTorch CPU into .venv, for the oracle tests and the benchmark (never a course dependency)
	@$(PY) -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null || \
		{ echo "installing PyTorch 2.13.0 (CPU) into $(VENV) as the tests' oracle"; $(PY) -m pip install -q torch==2.13.0; }

release: $(STAMP)  ## rebuild course/ from solutions/ with nbgrader generate_assignment
	$(PY) -m autograder.build release

check-release: $(STAMP)  ## fail if course/ differs from a fresh build
	$(PY) -m autograder.build check

samples: $(STAMP)  ## put the shipped sample submissions into $(SUBMITTED), as if collected
	$(PY) -m autograder.samples --out $(SUBMITTED)

autograde: $(STAMP)  ## grade every submission under $(SUBMITTED), $(JOBS) at a time, in the sandbox, into nbgrader's gradebook (SCHEDULER=tcp://host:8786: on Dask workers)
	$(PY) -m autograder.grade autograde --submitted $(SUBMITTED) --work $(WORK) --jobs $(JOBS) $(if $(SEED),--seed $(SEED)) $(if $(REGRADE),--regrade) \
		$(if $(CHANGED_ONLY),--changed-only) $(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(foreach s,$(STUDENT),--student $(s)) $(foreach l,$(LESSON),--lesson $(l))

scheduler: $(STAMP)  ## start a Dask scheduler here for `make autograde SCHEDULER=...` (private network only: docs/grading.md)
	$(VENV)/bin/dask scheduler --port $(or $(PORT),8786)

worker: $(STAMP)  ## start a Dask grading worker in this checkout for SCHEDULER=tcp://host:8786, $(JOBS) sandboxes at a time
	@[ -n "$(SCHEDULER)" ] || { echo "make worker needs SCHEDULER=tcp://host:8786 (the address \`make scheduler\` printed)"; exit 2; }
	@$(PY) -m autograder.grade sandbox
	PYTHONPATH=$(CURDIR) $(VENV)/bin/dask worker $(SCHEDULER) --nthreads $(JOBS)

feedback: $(STAMP)  ## write one HTML feedback file per student and lesson
	$(PY) -m autograder.grade feedback --work $(WORK)

grades: $(STAMP)  ## export $(WORK)/grades.csv, or FORMAT=canvas|moodle (MAPPING=roster.csv) for an LMS
	$(PY) -m autograder.grade grades --work $(WORK) $(if $(FORMAT),--format $(FORMAT)) $(if $(MAPPING),--mapping $(MAPPING))

report: $(STAMP)  ## class report from the graded results: $(WORK)/report/index.html, one page per lesson, report.json
	$(PY) -m autograder.insight report --work $(WORK) --submitted $(SUBMITTED)

similarity: $(STAMP)  ## flag pairs of submissions whose own code is alike (THRESHOLD=0.5): $(WORK)/report/similarity-*.html
	$(PY) -m autograder.insight similarity --work $(WORK) $(if $(THRESHOLD),--threshold $(THRESHOLD))

fairness: $(STAMP)  ## grade the fairness corpus (independent correct solutions) on all seeds, in process and sandboxed
	FAIRNESS_SEEDS=$(FAIRNESS_SEEDS) FAIRNESS_SANDBOX_SEEDS=$(FAIRNESS_SEEDS) $(PY) -m pytest -q autograder/tests/test_fairness.py

bench: $(STAMP)  ## measure vectorized vs naive vs PyTorch, grading throughput, notebook run times
	$(PY) -m bench

clean:  ## remove build outputs and grading work (keeps .venv)
	rm -rf build $(WORK) test-artifacts
