# Two commands matter: `make run` (the gateway, with the example config) and `make test`
# (everything CI checks). Both set up what they need on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= deploy/gateway.example.yaml
KAFKA  := tools/kafka/kafka.sh
KAFKA_DATA ?= var/kafka

.DEFAULT_GOAL := help
.PHONY: help venv run test lint typecheck schema schema-check pytest kafka kafka-stop \
        run-kafka system-deps bench bench-smoke bench-quick bench-breakdown bench-floods \
        bench-connection-flood fuzz clean \
        image compose-up compose-down

help:
	@echo "make run        run the gateway with $(CONFIG) (local event log in var/events)"
	@echo "make test       lint, type-check, schema drift, the whole test suite (real Kafka)"
	@echo "make kafka      start a local Kafka broker on 127.0.0.1:9092 (make kafka-stop)"
	@echo "make run-kafka  run the gateway publishing to that broker"
	@echo "make bench      the full benchmark (minutes); bench-smoke is the quick one"
	@echo "make fuzz       every fuzz target for FUZZ_SECONDS each (default $(FUZZ_SECONDS))"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

run: venv
	$(BIN)/webhook-gateway serve --config $(CONFIG)

# Real services the tests drive: Prometheus (promtool), wrk and redis-server come from Debian
# packages (openssl makes the certificates of the Redis TLS test).
system-deps:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v wrk >/dev/null \
	  && command -v redis-server >/dev/null && command -v openssl >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus wrk redis-server openssl >/dev/null; }

test: venv lint typecheck schema-check pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

schema: venv
	$(BIN)/webhook-gateway schema
	$(BIN)/webhook-gateway docs

schema-check: venv
	$(BIN)/webhook-gateway schema --check
	$(BIN)/webhook-gateway docs --check

# The test session starts (and stops) its own Kafka broker through $(KAFKA).
pytest: venv system-deps
	$(KAFKA) fetch
	$(BIN)/pytest

kafka:
	$(KAFKA) start --data $(KAFKA_DATA) --port 9092 --controller-port 9093

kafka-stop:
	$(KAFKA) stop --data $(KAFKA_DATA)

run-kafka: venv
	WEBHOOK_GATEWAY_SINK__KIND=kafka $(BIN)/webhook-gateway serve --config $(CONFIG)

# The full benchmark (about 27 minutes; results in bench/results/latest.md). bench-smoke is
# the seconds-long version the tests run; bench-quick an A/B of one change (about a minute).
bench: venv system-deps
	$(KAFKA) fetch
	$(BIN)/python -m bench.run --mode full

bench-smoke: venv system-deps
	$(KAFKA) fetch
	$(BIN)/python -m bench.run --mode smoke

bench-quick: venv system-deps
	$(KAFKA) fetch
	$(BIN)/python -m bench.run --mode quick

# Where a request's CPU goes: the gateway with stages removed one by one, and its Kafka path
# alone (about 9 minutes).
bench-breakdown: venv system-deps
	$(KAFKA) fetch
	$(BIN)/python -m bench.breakdown

# A forged-delivery flood: 429, closing the connection, or no budget (about 2 minutes).
bench-floods: venv system-deps
	$(BIN)/python -m bench.forgery_flood

# A connection flood, phase by phase, and the levers measured (waits for a quiet machine;
# about 25 minutes when it is).
bench-connection-flood: venv
	$(BIN)/python -m bench.flood_phases

# Coverage-guided fuzzing (atheris): each target in fuzz/targets for FUZZ_SECONDS, from the
# committed corpus; findings land in var/fuzz/findings. FUZZ_MERGE=1 grows fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz: venv
	$(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) $(if $(FUZZ_MERGE),--merge)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache *.egg-info

# Conveniences for users with Docker (not used by the tests: Docker does not run in CI).
image:
	docker build -f deploy/Dockerfile -t webhook-gateway:0.1.0 .

compose-up:
	docker compose -f deploy/docker-compose.yml up --build -d

compose-down:
	docker compose -f deploy/docker-compose.yml down -v
