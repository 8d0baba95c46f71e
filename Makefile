# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: run test deps dev-deps lint typecheck bench clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

run: deps
	$(PY) manage.py migrate --noinput
	$(PY) manage.py loaddemo
	$(PY) manage.py runcontactcenter

test: dev-deps
	@scripts/ensure-chromium.sh
	@scripts/ensure-speech-tools.sh
	@scripts/test-services.sh $(PY) -m pytest $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .

typecheck: dev-deps
	$(VENV)/bin/mypy realtime

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
