# Every target sets itself up on a fresh machine: Debian packages, .venv, the project and its extras.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || PY=python3; \
	test -x /usr/lib/postgresql/15/bin/initdb || (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,demo,scale]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tuya-archiver demo

test: $(STAMP)
	tests/services.sh start && { . .services/env && $(BIN)/ruff check . && $(BIN)/ruff format --check . \
	  && $(BIN)/pytest; rc=$$?; tests/services.sh stop; exit $$rc; }

test-fast: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	tests/services.sh start && { . .services/env && $(BIN)/python -m tests.bench; rc=$$?; tests/services.sh stop; exit $$rc; }

clean:
	rm -rf $(VENV) .services .pytest_cache .ruff_cache
