# Every target that runs code depends on `setup`, so on a fresh Debian machine
# `make demo` or `make test` alone creates the environment.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The operator page's browser packages (package.json, package-lock.json), served by HQ.
NODE_STAMP := node_modules/.installed-stamp
# Numba's on-disk kernel cache, so the second run starts warm.
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
# proj-data holds the EGM96 geoid grid that KLV heights above mean sea level need.
APT_PACKAGES := mosquitto chromium proj-data

.PHONY: setup system-packages numba-cache demo test bench lint clean

setup: system-packages $(STAMP) $(NODE_STAMP) numba-cache

# Numba checks a cached kernel against its own file only, not against the
# files of the kernels it calls; drop the whole cache when any source changed.
numba-cache:
	@if [ ! -f $(NUMBA_CACHE_DIR)/.stamp ] || \
	   [ -n "$$(find wire edge hq sim_hw -name '*.py' -newer $(NUMBA_CACHE_DIR)/.stamp | head -1)" ]; then \
	  rm -rf $(NUMBA_CACHE_DIR); fi; \
	mkdir -p $(NUMBA_CACHE_DIR) && touch $(NUMBA_CACHE_DIR)/.stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

# Exactly the lockfile's versions. npm comes with NodeSource's nodejs, or from Debian's npm.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	  else \
	    echo "npm is missing; run: sudo apt-get install -y npm"; exit 1; \
	  fi; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# System packages come from apt: installed when run as root, otherwise the
# exact command is printed and the target fails.
system-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

# The whole stack on the simulator: broker, HQ with its API, one node per post, drones and
# cameras played live. DEMO_ARGS="--scenario configs/scenarios/small.toml --duration 120".
demo: setup
	$(PY) -m stack demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Each prints its table and writes bench/results/NAME.json; `python -m bench` lists them all
# (detection, hq_fusion, hq_store, hq_page and sim_camera are run on their own).
bench: setup
	$(PY) -m bench tracking --json
	$(PY) -m bench sim_replay --json
	$(PY) -m bench mavlink_ingest --json
	$(PY) -m bench georef --json
	$(PY) -m bench uplink --json
	$(PY) -m bench edge_node --json
	$(PY) -m bench klv --json
	$(PY) -m bench hq --json
	$(PY) -m bench hq_api --json
	$(PY) -m bench soak --json
	$(PY) -m bench chaos --json
	$(PY) -m bench scenes --json

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) $(NUMBA_CACHE_DIR) .pytest_cache node_modules
