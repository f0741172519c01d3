# Two commands on a fresh machine: `make run` and `make test`. Both create .venv if missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench clean install bytecode system-packages translations

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Bytecode for our own modules: the workflow sandbox re-imports the workflow module for every
# case, and without a .pyc (PYTHONDONTWRITEBYTECODE is set on some machines) it recompiles it.
bytecode: $(STAMP)
	@$(PY) -m compileall -q dsar workflows activities connectors intake console demo worker.py

# Debian packages the tests start as real servers (dovecot: the privacy@ mailbox over IMAP).
# Installed only when missing, with sudo when not root; the package's own service stays off.
DEBS := dovecot-imapd:/usr/sbin/dovecot
# The browser the public form's tests drive through Playwright (never `playwright install`).
DEBS += chromium:/usr/bin/chromium
system-packages:
	@for pair in $(DEBS); do pkg=$${pair%%:*}; bin=$${pair#*:}; \
	  if [ ! -x "$$bin" ]; then \
	    echo "installing $$pkg (apt)"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$pkg >/dev/null \
	      || { $$SUDO apt-get update -q >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$pkg >/dev/null; } \
	      || { echo "could not install $$pkg"; exit 1; }; \
	  fi; done

# Front-end packages the app serves itself (HTMX, Swagger UI: no CDN), the OpenID provider the
# sign-in tests run (oidc-provider on the machine's Node.js) and axe-core, which the person's
# pages' browser tests inject to check accessibility; pinned in package-lock.json.
NODE_STAMP := node_modules/.installed-stamp
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP) bytecode system-packages $(NODE_STAMP)

## make run: Temporal dev server + Web UI (8233), worker, HTTP app (8000), demo company. Ctrl-C stops all.
run: install
	$(VENV)/bin/dsar dev

## make test: every test, against real servers (Temporal, PostgreSQL, SMTP...).
test: install
	$(PY) -m pytest -q -p no:cacheprovider

## make translations: the person's pages' text into their gettext catalogue, ready to translate
translations: install
	$(VENV)/bin/pybabel extract -F console/public/babel.cfg --no-location --sort-output \
	  --project dsar --omit-header -o console/public/locale/messages.pot .

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy dsar workflows activities connectors intake console worker.py

## make bench: throughput against a stack it starts itself (see bench/throughput.py --help)
bench: install
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache *.egg-info
