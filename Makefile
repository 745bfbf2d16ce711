# The two commands of the README are `make run` and `make test`. Both create or reuse
# the virtual environment in .venv and reinstall only when a requirements file changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STATIC_STAMP := staticfiles/.collected

.PHONY: run test test-fast lint format browser static

# --no-compile: pip would byte-compile all 6 GB (torch, its CUDA libraries) up front, a third
# of the install's time; Python compiles the modules actually imported on first use instead.
$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py reap --schedule >/dev/null
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve

# Test processes (pytest-xdist): one per core and one more, at most 5 (each loads the models),
# each with one compute thread so that they do not oversubscribe the cores. Many tests wait on
# a server, a worker or a browser, and the extra process fills that time: on 2 cores the first
# leg of CI took 322-391 s with 3 processes, 384-426 s with 2. PYTEST_ARGS selects tests.
TEST_PROCESSES ?= $(shell n=$$(nproc); echo $$(( n + 1 < 5 ? n + 1 : 5 )))
PYTEST_ARGS ?=
test: lint browser static
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

# The tests that need neither the shipped models nor ../shared media: under a minute.
test-fast: lint static
	$(PY) -m pytest -m "not slow"

# The pages' static files, collected again only when one of them changed (CI's second leg
# runs `make test` again: nothing to redo).
static: $(STATIC_STAMP)

$(STATIC_STAMP): $(STAMP) $(shell find static -type f)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@touch $@

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/codespell
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The browser test drives Debian's Chromium; install it where we may (root on Debian), else
# that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium is not installed: the browser test will skip"; }
