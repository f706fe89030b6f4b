# spikeport: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.spikeport-installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

.PHONY: install demo lint test bench results-digits docs-screenshot clean

install: $(STAMP)

# torch/torchvision are pinned to the wheels that ship on local disk; lava-nc and
# lava-dl declare Python<3.11 / torch<2.4 / numpy<2 but run fine here, so they are
# installed without their (stale) pins; their real runtime deps are listed explicitly.
# The frameworks whose models spikeport takes are the `frameworks` extra (snnTorch, Norse,
# sinabs); SpikingJelly and NeuroBench require torchaudio, which would replace torch 2.14.1,
# so they install without dependencies (theirs that matter are listed explicitly).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev,vision,frameworks]'
	$(PIP) install -q scipy asteval opencv-python-headless ninja numba loguru packaging
	$(PIP) install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	$(PIP) install -q --no-deps spikingjelly==2.0.0 neurobench==2.3.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikeport demo --out $(DEMO_OUT) --force

# Static checks (config in pyproject.toml): ruff over the code, tests, benchmarks and examples; mypy over the package.
lint: $(STAMP)
	$(VENV)/bin/ruff check spikeport tests benchmarks examples
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --timeout 600 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/neuron_speed.py
	$(PY) benchmarks/energy_overhead.py
	$(PY) benchmarks/energy_overhead.py --foreign snntorch --skip-rss
	$(PY) benchmarks/frameworks_matrix.py
	$(PY) benchmarks/onnx_latency.py
	$(PY) benchmarks/train_step.py

# Paper-method accuracy table on digits (3 seeds per row); rewrites docs/results-digits.md.
results-digits: $(STAMP)
	$(PY) benchmarks/paper_methods_digits.py --out docs/results-digits.md

# The HTML energy report's first screen (demo model, headless Chromium) -> docs/report-first-screen.png.
docs-screenshot: $(STAMP)
	SPIKEPORT_UPDATE_DOCS=1 $(PY) -m pytest -q tests/energy/test_report_browser.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
