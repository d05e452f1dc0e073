# Two commands do all the set-up:  make reproduce   and   make test
# Both create .venv (if missing) and install srlib into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= quick

# The benchmark images and official weights live outside the project; point at them when
# the companion folder ../shared is there and the user has not set the variables.
SHARED := $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/datasets/Set5/HR),)
export SRLIB_DATA_DIR ?= $(SHARED)/datasets
endif
ifneq ($(wildcard $(SHARED)/pretrained),)
export SRLIB_WEIGHTS_DIR ?= $(SHARED)/pretrained
endif

.PHONY: setup test reproduce smoke bench docs lab clean-results

$(STAMP): pyproject.toml
	@mkdir -p $(VENV) && date +%s > $(VENV)/.setup_started
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name srlib --display-name "Python (srlib)" >/dev/null
	touch $(STAMP)
	@now=$$(date +%s); echo "$$((now - $$(cat $(VENV)/.setup_started))) $$now" > $(VENV)/.setup_seconds

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

reproduce: $(STAMP)
	$(VENV)/bin/srlib reproduce --profile $(PROFILE)

smoke: $(STAMP)
	$(VENV)/bin/srlib reproduce --profile smoke

bench: $(STAMP)
	$(PY) benchmarks/bench_protocol.py

# the README's results section and each notebook's "how long" line, from the last runs' files
docs: $(STAMP)
	$(PY) -m srlib.docs

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-results:
	rm -rf results/smoke results/quick figures/smoke figures/quick
