# marketo-pipeline: every command a newcomer or CI needs. `make test` and `make run` set up what they use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SIM_PORT ?= 8089
API ?= soap
KAFKA_PORT ?= 9092
export KAFKA_PORT

.PHONY: help venv test lint format bench chaos simulate run clean kafka-up kafka-down kafka-jars

help:
	@echo "make test      lint, type check, unit and integration tests (sets up .venv)"
	@echo "make run       broker, simulator, service and a demo load of 10,000 events (Ctrl-C stops); API=rest for REST"
	@echo "make simulate  the Marketo simulator on 127.0.0.1:$(SIM_PORT)"
	@echo "make bench     the benchmarks; writes bench/results/latest.json and latest.png"
	@echo "make chaos     the failure suite at full scale"
	@echo "make lint      ruff, ruff format --check, mypy --strict"
	@echo "make kafka-up  the local Kafka broker on 127.0.0.1:$(KAFKA_PORT) (KAFKA_PORT changes it); make kafka-down stops it"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The broker's jars come from Maven Central once, before any test starts a broker.
KAFKA_JARS := var/kafka/libs/.complete

$(KAFKA_JARS): deploy/kafka/pom.xml
	deploy/kafka/kafka.sh fetch

test: lint $(KAFKA_JARS)
	deploy/prometheus/ensure-prometheus.sh
	$(BIN)/python -m pytest

bench: $(STAMP) $(KAFKA_JARS)
	$(BIN)/python -m bench

# The failure suite at full scale (`make test` runs the same scenarios shortened).
chaos: $(STAMP) $(KAFKA_JARS)
	CHAOS_SCALE=full $(BIN)/python -m pytest tests/integration/chaos -s --timeout 3600

simulate: $(STAMP)
	$(BIN)/marketo-pipeline simulate --port $(SIM_PORT)

# The local stack: the broker (fetched from Maven Central on first use), the simulator with Marketo's
# limits, the service, and a demo load of 10,000 events with a summary; Ctrl-C stops (the broker stays up).
run: $(STAMP)
	deploy/kafka/kafka.sh up
	$(BIN)/marketo-pipeline demo --bootstrap 127.0.0.1:$(KAFKA_PORT) --sim-port $(SIM_PORT) --api $(API)

kafka-jars: $(KAFKA_JARS)

kafka-up:
	deploy/kafka/kafka.sh up

kafka-down:
	deploy/kafka/kafka.sh down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
