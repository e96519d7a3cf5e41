# The two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-postgres lint format bench clean zbar

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# Re-install when the package description changes.
$(VENV)/.installed-run: setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[postgres]'
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[postgres,test]'
	touch $@ $(VENV)/.installed-run

## run: install, migrate the embedded SQLite database, create the first admin, serve
# The MBG stand-in plays the local MBG; its private CA is trusted for MBG connections only.
run: export LOCAL_MBG ?= 127.0.0.1:5443
run: export MBG_CA_BUNDLE ?= $(CURDIR)/instance/peers/mbg/tls/ca.pem
# Deployment links point at this local server (plain http on PORT) unless told otherwise.
run: export SERVER_FQDN ?= localhost
run: export DEPLOY_LINK_SCHEME ?= http
run: export DEPLOY_LINK_PORT ?= $(or $(PORT),5000)
run: $(VENV)/.installed-run
	$(BIN)/server-manager init
	exec $(BIN)/server-manager run --local-mbg

# Tests read QR codes back with a real decoder: Debian's zbar-tools.
zbar:
	@command -v zbarimg >/dev/null || { echo "Installing zbar-tools (QR decoder for the tests)"; \
		$$(command -v sudo) apt-get install -y -q zbar-tools >/dev/null; }

## test: the whole suite (SQLite unless DATABASE_URL says otherwise)
test: $(VENV)/.installed-test zbar
	$(BIN)/pytest -q

## test-postgres: the suite against the local PostgreSQL
test-postgres: $(VENV)/.installed-test zbar
	DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test $(BIN)/pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-test
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
