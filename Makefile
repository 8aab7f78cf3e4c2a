# The two quick-start commands (`make demo`, `make test`) create everything they need: the virtual environment,
# the Python packages (pinned by constraints.txt), the Kafka and registry jars (cached in ~/.cache/gplx-bus) and the
# Debian packages the tests use (prometheus for promtool and the Prometheus server, kcat), installed as root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-12)

.PHONY: demo test bench bench-scale setup jars debs clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

jars: setup
	$(BIN)/gplx-bus local fetch

debs:
	@bash deploy/debian-packages.sh

demo: jars
	$(BIN)/gplx-bus demo

test: jars debs
	$(BIN)/python -m pytest

bench: jars
	$(BIN)/gplx-bus bench

# one worker holding 1,000,000 citizens (50,000 open cases): memory, disk, restore, tick; minutes, not CI
bench-scale: jars
	$(BIN)/python -m gplx_bus.bench.scale --citizens 1000000 --open-cases 50000

clean:
	rm -rf $(VENV) .pytest_cache
