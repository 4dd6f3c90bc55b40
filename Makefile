# The two commands of the quick start. Both set up their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A shipped scenario's name (`citychain scenarios` lists them) or a path to a file.
SCENARIO ?= taihu

.PHONY: run test bench clean mosquitto chromium
# apt needs root: sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed  ## run a city-chain scenario in the simulator
	$(BIN)/citychain run $(SCENARIO)

mosquitto:  ## the MQTT broker the cluster tests run against (Debian's package; not started as a service)
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || \
		($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq mosquitto mosquitto-clients >/dev/null)

chromium:  ## the headless browser the report.html test opens the page in (Debian's package)
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || \
		($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium >/dev/null)

test: $(BIN)/.installed mosquitto chromium  ## the whole test suite, on both cores
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: $(BIN)/.installed  ## simulator-speed benchmark (docs/benchmarking.md)
	$(BIN)/python benchmarks/sim_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
