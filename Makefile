# One entry point for humans and CI. `make test` is the README's test command.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run demo test lint clean binary binary-onefile docker

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

# Frozen executable (PyInstaller, config/pyinstaller/mcp-fileserver.spec), see docs/deploy.md.
SPEC := config/pyinstaller/mcp-fileserver.spec

# One folder: dist/mcp-fileserver/mcp-fileserver (fast start; what the Docker image ships).
binary: install
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist \
	  --workpath build/pyinstaller $(SPEC)

# One file: dist/onefile/mcp-fileserver (unpacks itself to a temp folder on every start).
binary-onefile: install
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist/onefile \
	  --workpath build/pyinstaller-onefile $(SPEC) -- --onefile

# Docker image mcp-fileserver:<version> (and :latest). Offline base for this machine:
#   make docker PYTHON_IMAGE=$$(../shared/tools/docker-base.sh)
VERSION      := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' mcp_fileserver/__init__.py)
IMAGE        ?= mcp-fileserver:$(VERSION)
PYTHON_IMAGE ?=
docker:
	docker build $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	  -t $(IMAGE) -t mcp-fileserver:latest .

# npm peers pinned by bench/package.json + package-lock.json: Node.js 22 (as an npm
# package: the peers need >= 22), the baselines the benchmarks compare against, and the
# MCP Inspector CLI that tests/e2e drives. Optional dependencies (DBHub's drivers for
# other databases) are not needed and not installed.
PEERS := bench/node_modules/.peers-installed
.PHONY: peers bench bench-files bench-files-scale bench-sql bench-guard bench-audit bench-binary audit-insitu
peers: $(PEERS)

$(PEERS): bench/package.json bench/package-lock.json
	npm ci --prefix bench --omit=optional --no-audit --no-fund --loglevel=error
	touch $(PEERS)

# Benchmarks (never part of `make test`); figures and commands in bench/RESULTS.md,
# each run's raw output in bench/out/.
bench: bench-files bench-files-scale bench-sql bench-guard bench-audit bench-binary

bench-files: install peers
	$(BIN)/python bench/bench_files.py

# Issue 19: a generated 100k-file tree, side by side with rg -j1, find and the Node server.
bench-files-scale: install peers
	$(BIN)/python bench/bench_files_scale.py

bench-sql: install peers
	$(BIN)/python bench/bench_sql.py

bench-guard: install
	$(BIN)/python bench/bench_guard.py

bench-audit: install
	$(BIN)/python bench/bench_audit.py

# A profiler for issue 4, not part of `make bench`: the audit's own time in the server.
audit-insitu: install
	$(BIN)/python bench/audit_insitu.py

bench-binary: binary
	$(BIN)/python bench/bench_binary.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
