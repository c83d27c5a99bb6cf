# RelayDesk. `make run` serves on SQLite; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/relaydesk --config config.yaml serve

test: install
	$(BIN)/pytest -q -rs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router knowledge bot channels

bench: install
	$(BIN)/python bench/chat_bench.py
	$(BIN)/python bench/telegram_bench.py
	$(BIN)/python bench/email_bench.py
	$(BIN)/python bench/inbox_bench.py
	$(BIN)/python bench/kb_bench.py
	$(BIN)/python bench/storage_bench.py $(if $(RELAYDESK_TEST_PG_URL),--pg $(RELAYDESK_TEST_PG_URL))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
