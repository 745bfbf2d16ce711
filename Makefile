# The two commands of the README are `make run` and `make test`. Both create or reuse
# the virtual environment in .venv and reinstall only when a requirements file changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format browser

$(STAMP): requirements.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py reap --schedule >/dev/null
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve

test: lint browser
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m pytest

# The tests that need neither the shipped models nor ../shared media: under a minute.
test-fast: lint
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) -m pytest -m "not slow"

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
