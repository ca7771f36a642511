# On a fresh clone, `make template` and `make test` are all you need: every target creates .venv
# and installs into it first what it needs, when pyproject.toml is newer than the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
DEMO_PORT ?= 5055
DEMO_ENDPOINT := http://127.0.0.1:$(DEMO_PORT)

.PHONY: help template lint test scan bench docs diagram demo clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Building needs only the package's own dependencies; the test tools (moto, pytest, ruff, shellcheck...) come
# with `make test` and the targets that need them.
BUILD_INSTALLED := $(VENV)/.installed-build

$(BUILD_INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(INSTALLED): $(BUILD_INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

template: $(BUILD_INSTALLED) ## Build templates/ (the installation, the worker pool, SSH) from the code, and the parameter specs the package ships
	$(BIN)/valohai-cfn build
	$(BIN)/python -m valohai_cfn.specs

lint: $(BUILD_INSTALLED) ## Run cfn-lint (informational rules included) on the built templates
	$(BIN)/valohai-cfn lint
	$(BIN)/valohai-cfn lint --pool
	$(BIN)/valohai-cfn lint --ssh

test: $(INSTALLED) ## ruff, then the whole test suite
	$(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

SCAN_VENV := .venv-scan
SCAN_INSTALLED := $(SCAN_VENV)/.installed
# No network: checkov would fetch its guideline mappings otherwise.
CHECKOV := BC_SKIP_MAPPING=TRUE $(SCAN_VENV)/bin/checkov --skip-download --framework cloudformation --compact --quiet

$(SCAN_INSTALLED): pyproject.toml
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[scan]'
	touch $@

# checkov does not run CloudFormation's transform, so it cannot see what the loops make (worker groups,
# secrets, security groups, settings): it scans the template processed for the example parameters too.
scan: $(INSTALLED) $(SCAN_INSTALLED) ## checkov on the built templates (fails on any failed check), and the tests proving it can fail
	$(BIN)/valohai-cfn build --format json --processed-for params/example.json \
		--pool-processed-for params/example-pool.json -o build/scan
	$(CHECKOV) --external-checks-dir valohai_cfn/scan_checks \
		-f templates/valohai-self-hosted.json -f templates/valohai-self-hosted.yaml \
		-f build/scan/valohai-self-hosted.processed.json \
		-f templates/valohai-worker-pool.json -f templates/valohai-worker-pool.yaml \
		-f build/scan/valohai-worker-pool.processed.json \
		-f templates/valohai-ssh.json -f templates/valohai-ssh.yaml
	CHECKOV_BIN="$(CURDIR)/$(SCAN_VENV)/bin/checkov" $(BIN)/python -m pytest tests/test_scan.py

bench: $(INSTALLED) ## Build time and memory against the targets; deploy time next to awscli's
	command -v aws >/dev/null || test -x .venv-awscli/bin/aws || \
		($(PYTHON) -m venv .venv-awscli && .venv-awscli/bin/python -m pip install --quiet awscli)
	$(BIN)/python benchmarks/bench.py

demo: $(INSTALLED) ## Deploy the template to a local AWS (moto) on 127.0.0.1, ending with the app's URL and worker groups; it names the parameters it does not apply as AWS would
	@rm -f params/demo.json
	@$(BIN)/valohai-cfn local-aws --port $(DEMO_PORT) --demo-params params/demo.json & server=$$!; \
	trap 'kill '$$server EXIT; \
	for i in $$(seq 150); do test -s params/demo.json && break; sleep 0.2; done; \
	export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1; \
	$(BIN)/valohai-cfn deploy --stack-name valohai-demo --params params/demo.json \
		--endpoint-url $(DEMO_ENDPOINT) --yes

docs: $(INSTALLED) ## Regenerate the README's parameter table, diagram and checkov skips from the template
	$(BIN)/python -m valohai_cfn.docs

diagram: docs ## The same: the README's Mermaid diagram is one of those sections

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) $(SCAN_VENV) .venv-awscli .pytest_cache .ruff_cache build *.egg-info
