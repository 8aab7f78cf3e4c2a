# The two quick-start commands (`make demo`, `make test`) create everything they need: the virtual environment,
# the Python packages (pinned by constraints.txt), the Kafka and registry jars (cached in ~/.cache/gplx-bus) and the
# Debian packages the tests use (prometheus for promtool and the Prometheus server, kcat), installed as root.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | md5sum | cut -c1-12)

.PHONY: demo test bench bench-scale bench-exporter bench-status bench-gateway faults soak setup jars debs clean

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

# Two pytest workers, a file each at a time (a module's cluster stays with its tests); each worker starts its own
# broker and registry. On 2 cores: 9.5 minutes against 18 in one process (session 9): most tests wait on Kafka.
test: jars debs
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: jars
	$(BIN)/gplx-bus bench

# one worker holding 1,000,000 citizens (50,000 open cases): memory, disk, restore, tick; minutes, not CI
bench-scale: jars
	$(BIN)/python -m gplx_bus.bench.scale --citizens 1000000 --open-cases 50000

# The lag exporter's case signals after a simulated year: start seconds and peak RSS, before and now (~5 minutes).
bench-exporter: jars
	$(BIN)/python -m gplx_bus.bench.exporter_year --book-only --cases 5000000
	$(BIN)/python -m gplx_bus.bench.exporter_year --cases 250000

# The case store on PostgreSQL (not CI): query p99 on 1,000,000 cases; materializer against a plain COPY.
bench-status: setup debs
	$(BIN)/python -m consumers.casestore.bench

# every fault scenario on the three-node cluster (the CI selection included), with the figures at the end
faults: jars
	$(BIN)/python -m pytest -m 'faults or not faults' tests/faults

# 30 minutes at 50 cases/s with a fault every 2 minutes; memory plot and table in soak-report/ (extra: plot)
soak: jars
	$(BIN)/pip install -q -c constraints.txt -e '.[plot]'
	$(BIN)/python -m tests.faults.soak --minutes 30 --rate 50 --fault-every 120 --out soak-report

# The clinic gateway: certificates/s and p99 with 16 clients, against an echo endpoint on the same server.
bench-gateway: jars
	$(BIN)/python -m gplx_bus.bench.gateway

clean:
	rm -rf $(VENV) .pytest_cache
