# The course's entry points. Each target creates .venv and installs the pinned environment on first use.
#   make course [PROFILE=tiny|smoke|full]   run every notebook headlessly, write results/<profile>/
#   make test                               lint, unit tests, and every notebook in the smoke profile, twice
PROFILE ?= tiny
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Unit-test processes and notebooks executed in parallel by the tests (pytest-xdist workers; a unit-test file runs
# whole in one process, so its module fixtures are built once).
UNIT_WORKERS ?= 2
NB_WORKERS ?= 2
# A notebook whose kernel fails to start runs again, at most twice: kernels started at once can race for a TCP port
# ("Address already in use", https://github.com/treebeardtech/nbmake/issues/129). Only these start-up errors are
# retried; a failing cell fails the run at once (tests/test_hygiene.py checks both).
NB_RERUN := --reruns 2 --only-rerun "Kernel didn't respond" --only-rerun "Kernel died before replying"
# Idle OpenMP threads sleep instead of spinning: several processes share few cores (see utils/__init__.py).
export OMP_WAIT_POLICY ?= PASSIVE
# Relative COURSE_RESULTS_DIR / COURSE_MODEL (a folder that exists) mean relative to where make runs, not to
# notebooks/, where the kernels of `make lab` run (utils.course does the same for `make course`).
ifneq ($(COURSE_RESULTS_DIR),)
export COURSE_RESULTS_DIR := $(abspath $(COURSE_RESULTS_DIR))
endif
ifneq ($(wildcard $(COURSE_MODEL)),)
export COURSE_MODEL := $(abspath $(COURSE_MODEL))
endif

.PHONY: setup course test lint unit notebooks rerun determinism kernel lab ui-test slides data model bench report clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . || $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m utils.course run --profile $(PROFILE)

test: lint unit determinism

lint: $(STAMP)
	$(PY) -m ruff check utils tests benchmarks notebooks

unit: $(STAMP)
	COURSE_PROFILE=smoke $(PY) -m pytest tests -n $(UNIT_WORKERS) --dist loadfile

# The notebooks run from a clean results folder of their own, several at once (they share cached runs safely).
# They record the course's kernel, flan-course (`make kernel`); executors run them on python3, the Python running
# them, so no kernel needs registering (utils/course.py does the same).
notebooks: $(STAMP)
	rm -rf results/test-run
	COURSE_PROFILE=smoke COURSE_RESULTS_DIR=$(CURDIR)/results/test-run \
	  $(PY) -m pytest --nbmake notebooks --nbmake-kernel=python3 -n $(NB_WORKERS) --nbmake-timeout=900 $(NB_RERUN) -p no:cacheprovider

# The smoke course again, from a clean results folder, the way `make course` runs it (one notebook after another).
rerun: $(STAMP)
	rm -rf results/test-rerun
	COURSE_RESULTS_DIR=$(CURDIR)/results/test-rerun $(PY) -m utils.course run --profile smoke

# Both smoke courses at once (the runner runs one kernel at a time, beside nbmake's two), which must give the same
# metrics.json (times aside), and executed notebooks a class can read: no warning, no absolute path, one progress
# bar per cell at most (tests/test_screen.py).
determinism: $(STAMP)
	$(MAKE) --no-print-directory -j 2 notebooks rerun
	$(PY) -m utils.course compare results/test-run/smoke/metrics.json results/test-rerun/smoke/metrics.json
	SCREEN_NOTEBOOKS=results/test-rerun/smoke/notebooks $(PY) -m pytest -q -p no:cacheprovider tests/test_screen.py

# A named Jupyter kernel for .venv ("Python (flan-course)"), so VS Code and a JupyterLab started elsewhere find it.
KERNEL_NAME ?= flan-course
kernel: $(STAMP)
	$(PY) -m ipykernel install --user --name $(KERNEL_NAME) --display-name "Python ($(KERNEL_NAME))"

# `make lab` is for a class: JupyterLab's "official Jupyter news?" pop-up is answered "never" (the course's default,
# written into .venv's JupyterLab settings, overrides.d; a learner's own choice in JupyterLab still wins), and the
# launcher lists the course's kernel only (not also python3, the same Python under another name).
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d/flan-course.json
$(LAB_SETTINGS): $(STAMP)
	mkdir -p $(dir $@)
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}' > $@

LAB_ARGS := --KernelSpecManager.allowed_kernelspecs=$(KERNEL_NAME) --MultiKernelManager.default_kernel_name=$(KERNEL_NAME)
lab: kernel $(LAB_SETTINGS)
	COURSE_PROFILE=$(PROFILE) $(VENV)/bin/jupyter lab notebooks $(LAB_ARGS)

# A maintainer's check in a real browser, not part of `make test` (docs/developer-notes.md#make-ui-test): JupyterLab
# as `make lab` starts it, in headless Chromium, runs lessons 00 and 06 from the menu and uses the playground.
# Needs node/npm (playwright-core is installed into .venv once) and a Chromium at UI_BROWSER.
UI_BROWSER ?= /usr/bin/chromium
UI_NODE := $(VENV)/share/flan-course/ui-test
PLAYWRIGHT_VERSION := 1.65.2
$(UI_NODE)/node_modules/playwright-core/package.json:
	npm install --silent --no-audit --no-fund --no-save --prefix $(UI_NODE) playwright-core@$(PLAYWRIGHT_VERSION)

ui-test: $(STAMP) $(LAB_SETTINGS) $(UI_NODE)/node_modules/playwright-core/package.json
	NODE_PATH=$(abspath $(UI_NODE))/node_modules PY=$(abspath $(PY)) UI_BROWSER=$(UI_BROWSER) KERNEL_NAME=$(KERNEL_NAME) \
	  LAB_ARGS="$(LAB_ARGS)" COURSE_PROFILE=smoke node tests/ui/lab_lessons.js

# Slides of the executed lessons (run `make course` first) that work offline: a slide per section, reveal.js and the
# rest fetched once with npm into .venv and copied beside the slides (tools/slides.py).
slides: $(STAMP)
	$(PY) -m tools.slides $(or $(COURSE_RESULTS_DIR),results)/$(PROFILE)

report: $(STAMP)
	$(PY) -m utils.course report --profile $(PROFILE)

data: $(STAMP)
	$(PY) -m utils.world.synth

model: $(STAMP)
	$(PY) -m utils.world.tiny_flan build

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf results
