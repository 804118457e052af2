# Front door. The two commands a user needs:
#   make        fetch dependencies, build every image (both UF2s, unix simulation, qemu)
#   make test   build, then run every test (what .ci/run calls)
#   make run    build every image, then run the simulation (= make && make sim)
#   make sim    run the simulation: fleet services + a relays and a sensors device (Ctrl-C stops)
# More: make unix | qemu | rp2, make bench, make clean.
# Options (README, "Options"): VARIANTS, MICROPY_DIR, IOTLIB_WIRELESS, IOTLIB_LOADER, IOTLIB_OTA_KEY,
# IOTLIB_RELEASE, IOTLIB_BUILD, IOTLIB_WIFI_SOURCES, PIOT_CACHE, DEBIAN_MIRROR
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Each option reaches the scripts only when it is set (an exported empty IOTLIB_BUILD would
# point the tests at a relative build/ of nothing).
OPTIONS := VARIANTS MICROPY_DIR IOTLIB_WIRELESS IOTLIB_LOADER IOTLIB_OTA_KEY IOTLIB_RELEASE \
           IOTLIB_BUILD IOTLIB_WIFI_SOURCES PIOT_CACHE DEBIAN_MIRROR
export $(foreach v,$(OPTIONS),$(if $(value $(v)),$(v)))

.PHONY: all build run unix qemu rp2 venv fleet-deps test sim bench clean

all: build

build:
	firmware/build.sh

unix qemu rp2:
	firmware/build.sh $@

venv: $(VENV)/.installed

# Host side: test clients, the reference fleet services and the signing tool, in one venv.
$(VENV)/.installed: requirements-test.txt fleet/pyproject.toml tools/iot-sign/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-test.txt
	$(PY) -m pip install -q --disable-pip-version-check -e 'fleet[test]' -e tools/iot-sign
	touch $@

# Debian's PostgreSQL server: the fleet tests and benchmarks start their own in a temporary folder.
fleet-deps:
	fleet/install_system_deps.sh

# The fleet services' suite has its own conftest, so it runs as its own pytest session, beside
# the device suite (mostly one emulator core busy) to keep CI short; its report follows.
# fetch_chrony.sh: Debian's chronyd for the time-sync tests, unpacked, never installed.
test: venv fleet-deps build
	firmware/fetch_chrony.sh >/dev/null
	@$(PY) -m pytest fleet/tests > build/fleet-tests.log 2>&1 & fleet=$$!; \
	$(PY) -m pytest tests; device=$$?; \
	wait $$fleet; fleet_rc=$$?; \
	echo "---- fleet services suite (build/fleet-tests.log)"; cat build/fleet-tests.log; \
	[ $$device -eq 0 ] && [ $$fleet_rc -eq 0 ]

# The main job: every image, then the device running in simulation.
run: build sim

# The fleet services and one device of each role from the unix build, on loopback.
sim: venv unix
	PATH=$(abspath $(VENV))/bin:$$PATH $(PY) firmware/sim.py

# Side-by-side ratios (C vs Python, our servers vs a baseline), printed; not timed tests.
BENCHES := ci/bench/bench_hotpath.py ci/bench/bench_relays_api.py ci/bench/fleet_load.py ci/bench/fleet_replicas.py \
           ci/bench/tls_session_heap.py ci/bench/bench_hardening.py
bench: venv fleet-deps build
	for b in $(BENCHES); do PATH=$(abspath $(VENV))/bin:$$PATH $(PY) $$b || exit 1; done

clean:
	rm -rf build
