# The two set-up commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?=
# Debian packages the test suite drives for real (IMAP server, browser, MTA, PostgreSQL
# with its contrib extensions unaccent and pg_trgm, and systemd for `systemd-analyze
# verify/security` and `systemd-sysusers` on the unit), and
# the CPython email test mails the ingest corpus test reads.
TEST_DEBS := dovecot-imapd chromium postfix postgresql postgresql-contrib systemd \
             libpython3.11-testsuite

.PHONY: run test check lint typecheck unit unit-postgresql bench install install-test \
        system-deps clean i18n-extract i18n-update i18n-compile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test system-deps

## run: install and start the daemon on embedded defaults (or CONFIG=path/to/file.toml)
run: install
	$(BIN)/nexusmail $(if $(CONFIG),--config $(CONFIG)) run

## test: install what the tests need, then run the linters, the type checker and the tests
test: install-test check

check: lint typecheck unit unit-postgresql

lint:
	$(BIN)/ruff check nexusmail tests bench

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest -q

# The tests that open a store, again on a throwaway PostgreSQL cluster (started as the
# postgres user, so root only): the integration tests and the browser walks through the
# admin page. Left out: the offline commands' SQLite-file tests (their PostgreSQL twins
# run in every pass) and modules that never open the run's store (packaging; the spool
# test writes its own SQLite config).
unit-postgresql:
	@if [ "$$(id -u)" -ne 0 ]; then echo "PostgreSQL pass skipped: the throwaway cluster needs root"; \
	else $(BIN)/pytest -q --store=postgresql tests/integration tests/browser \
	  --ignore=tests/integration/test_operator_tools.py \
	  --ignore=tests/integration/test_packaging.py \
	  --ignore=tests/integration/test_smtp_spool.py; fi

system-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

## i18n-extract: collect the admin page's and the CLI's texts into nexusmail/locale/messages.pot
i18n-extract:
	$(BIN)/pybabel extract -F babel.cfg -k msg -k N_ --no-location --sort-output \
	  --project nexusmail --copyright-holder "the nexusmail developers" \
	  -o nexusmail/locale/messages.pot .

## i18n-update: merge new texts into the Italian and Romanian catalogues (then translate)
i18n-update: i18n-extract
	$(BIN)/pybabel update -i nexusmail/locale/messages.pot -d nexusmail/locale \
	  --no-fuzzy-matching --ignore-obsolete --width 100

## i18n-compile: the .mo files the daemon loads (committed, shipped in the wheel)
i18n-compile:
	$(BIN)/pybabel compile -d nexusmail/locale --statistics

bench: install-test
	$(BIN)/python bench/smtp_ingest.py

clean:
	rm -rf $(VENV) nexusmail-data
