# RestART Tutor. Quick start: `make demo` (terminal chat) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint audit bench install clean i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/restart-tutor --db sqlite:///demo.db chat --learner demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check bot storage tests bench tools
	$(BIN)/python -m tools.audit_deps
	$(BIN)/restart-tutor lessons check
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bot storage tests bench tools

# Installed dependencies against PyPI's advisories (tools/audit_deps.py says why not pip-audit).
audit: $(VENV)/.installed-test
	$(BIN)/python -m tools.audit_deps

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

# Re-extract translatable strings and update every catalog (then translate the new entries).
i18n: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F locales/babel-messages.cfg -k _ -k N_ -k ngettext:1,2 \
		--add-comments=TRANSLATORS: --no-wrap --sort-by-file --project "RestART Tutor" \
		-o locales/messages.pot .
	$(BIN)/pybabel extract -F locales/babel-lessons.cfg --no-wrap --sort-by-file \
		--project "RestART Tutor lessons" -o locales/lessons.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-wrap --ignore-pot-creation-date
	$(BIN)/pybabel update -i locales/lessons.pot -d locales -D lessons --no-wrap --ignore-pot-creation-date

clean:
	rm -rf $(VENV) demo.db* tutor-files .pytest_cache .ruff_cache
