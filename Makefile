# Two commands do all the set-up:  make reproduce   and   make test
# Both create .venv (if missing) and install srlib into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= quick

# LOCKED=1 (make setup / reproduce / test LOCKED=1): install the exact versions of the lock file
# for this platform and torch build, locks/<platform>-<build>.txt (`make lock` writes it from the
# venv), instead of the ranges of pyproject.toml; TORCH_BUILD=cpu|cu130|... picks among several.
ifdef LOCKED
STAMP  := $(VENV)/.installed-locked
endif

# The benchmark images and official weights live outside the project; point at them when
# the companion folder ../shared is there and the user has not set the variables.
SHARED := $(abspath ../shared)
ifneq ($(wildcard $(SHARED)/datasets/Set5/HR),)
export SRLIB_DATA_DIR ?= $(SHARED)/datasets
endif
ifneq ($(wildcard $(SHARED)/pretrained),)
export SRLIB_WEIGHTS_DIR ?= $(SHARED)/pretrained
endif

.PHONY: setup test reproduce smoke gpu-check lock bench docs lab student clean-results

$(STAMP): pyproject.toml $(if $(LOCKED),$(wildcard locks/*.txt))
	$(if $(LOCKED),@$(PYTHON) srlib/lockfile.py pick $(TORCH_BUILD) >/dev/null)
	@mkdir -p $(VENV) && date +%s > $(VENV)/.setup_started
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifdef LOCKED
	lock=$$($(PYTHON) srlib/lockfile.py pick $(TORCH_BUILD)) && echo "installing the exact versions of $$lock" && \
	  $(PY) -m pip install --quiet -r $$lock && $(PY) -m pip install --quiet --no-deps -e .
else
	$(PY) -m pip install --quiet -e '.[dev]'
endif
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

# On a GPU box: the smoke profile on CUDA, timed AWSRN-S training (bf16) and inference, written to
# results/gpu_check.json with the gpu profile's estimated minutes per notebook. Not part of `make test`.
gpu-check: $(STAMP)
	$(PY) -m srlib.gpucheck $(GPU_CHECK_ARGS)

# the lock file of this venv (locks/<platform>-<torch build>.txt), for `make ... LOCKED=1`
lock: $(STAMP)
	$(PY) -m srlib.lockfile write

# The benchmark page: installs the bench extra (super-image, the peers timed; never an srlib
# dependency) once, then measures, writes benchmarks/README.md and prints it (~10 min on 2 threads).
BENCH_STAMP := $(VENV)/.installed-bench
BENCH_THREADS ?= 2
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/page.py --threads $(BENCH_THREADS) $(BENCH_ARGS)

# the README's generated sections and each notebook's "how long" line, from the last runs' files
# (then the student copies, whose first cells carry that line too)
docs: $(STAMP)
	$(PY) -m srlib.docs
	$(PY) -m srlib.course notebooks notebooks/student

# course copies: notebooks/student/, each exercise cell a stub its check cell fails on (srlib/course.py)
student: $(STAMP)
	$(PY) -m srlib.course notebooks notebooks/student

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-results:
	rm -rf results/smoke results/quick figures/smoke figures/quick
