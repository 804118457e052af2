# Front door. The two commands a user needs:
#   make        fetch dependencies, build every image (both UF2s, unix simulation, qemu)
#   make test   build, then run every test (what .ci/run calls)
# More: make unix | qemu | rp2, make sim, make bench, make clean.
# Options: VARIANTS="RELAYS SENSORS", MICROPY_DIR=/path/to/micropython, IOTLIB_WIRELESS=ON|OFF
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export VARIANTS MICROPY_DIR IOTLIB_WIRELESS

.PHONY: all build unix qemu rp2 venv test bench clean

all: build

build:
	firmware/build.sh

unix qemu rp2:
	firmware/build.sh $@

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt $(wildcard fleet/pyproject.toml)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	if [ -f fleet/pyproject.toml ]; then $(PY) -m pip install -q -e 'fleet[test]'; fi
	touch $@

# The fleet services' suite has its own conftest, so it runs as its own pytest session.
test: venv build
	$(PY) -m pytest tests
	if [ -d fleet/tests ]; then $(PY) -m pytest fleet/tests; fi

bench: venv build
	for b in ci/bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf build
