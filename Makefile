# On a fresh clone, `make template` and `make test` are all you need: every target creates .venv
# and installs the package into it first, when pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help template lint test bench clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

template: $(INSTALLED) ## Build templates/valohai-self-hosted.{json,yaml} from the code
	$(BIN)/valohai-cfn build

lint: $(INSTALLED) ## Run cfn-lint (informational rules included) on the built template
	$(BIN)/valohai-cfn lint

test: $(INSTALLED) ## ruff, then the whole test suite
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: $(INSTALLED) ## Wall time and peak memory of `valohai-cfn build`, against the targets
	$(BIN)/python benchmarks/bench.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
