# One entry point for humans and CI. `make test` is the README's test command.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

DEMO_CONFIG := config/demo/demo.toml

# Build the demo database from its SQL script and run a short real MCP session.
demo: install
	$(BIN)/python -m mcp_fileserver.demo --config $(DEMO_CONFIG)

# Serve the demo workspace over stdio (what an MCP client would start).
run: install
	$(BIN)/python -m mcp_fileserver.demo --config $(DEMO_CONFIG) --prepare-only
	$(BIN)/mcp-fileserver --config $(DEMO_CONFIG)

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check mcp_fileserver tests bench
	$(BIN)/ruff format --check mcp_fileserver tests bench

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
