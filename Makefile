# The two commands of the README: `make run` (the reference service) and `make test` (the whole
# suite). Both build the project's own virtual environment, .venv, when a pyproject.toml
# changes; nothing is installed outside it.
#
# The repository holds two distributions, packages/tickwork and packages/miauflix. The venv
# has both installed editable with every extra, plus the root pyproject.toml's `dev` group; and
# a wheelhouse (.venv/wheelhouse) of the distributions' third-party dependencies, from which the
# packaging tests install the freshly built wheels into new venvs without reaching a registry.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELHOUSE := $(VENV)/wheelhouse
PACKAGES := packages/tickwork/pyproject.toml packages/miauflix/pyproject.toml
SOURCES := packages tests benchmarks

.PHONY: venv run test lint typecheck check coverage bench clean

$(STAMP): pyproject.toml $(PACKAGES)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet --group dev \
		-e 'packages/tickwork[service,otel,postgres,redis,cron]' -e 'packages/miauflix[postgres]'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) \
		'packages/tickwork[service,otel]' 'packages/miauflix[postgres]'
	rm -f $(WHEELHOUSE)/tickwork-*.whl $(WHEELHOUSE)/miauflix-*.whl
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/tickwork run miauflix.app:setup

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/ruff check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

coverage: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.core
	$(BIN)/python -m benchmarks.service

clean:
	rm -rf $(VENV)
