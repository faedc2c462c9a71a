# The two commands of the README:  `make demo` (main job) and `make test` (tests).
# Both create .venv on first use and install everything from this repository's files.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP_DEPS  := .stamp-deps
STAMP_BUILD := .stamp-build
STAMP_DATA  := .stamp-data
FMNIST_DIR  := /usr/share/datasets/fashion-mnist
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NATIVE_SRC  := $(shell find csrc -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: all install data demo test test-py test-cpp test-sanitize bench docs clean

all: install

$(PY):
	$(PYTHON) -m venv $(VENV)

# Third-party packages. torch is pinned to the CPU wheel that lies on disk here.
$(STAMP_DEPS): $(PY) requirements-dev.txt
	$(PIP) install --upgrade --quiet pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# The package itself, editable, with its native extension (rebuilt when csrc/ changes).
$(STAMP_BUILD): $(STAMP_DEPS) $(NATIVE_SRC)
	$(PIP) install --quiet --no-build-isolation --no-deps -e .
	touch $@

install: $(STAMP_BUILD)

# The demo's data set ships offline as a Debian package (Fashion-MNIST, 60k/10k, IDX).
$(STAMP_DATA):
	@if [ ! -d $(FMNIST_DIR) ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi
	touch $@

data: $(STAMP_DATA)

demo: install data
	$(PY) -m bnnkit demo

test: test-py test-cpp

test-py: install data
	$(PY) -m pytest -q

# C++ tests of the core library (no Python), built with CMake/ctest.
test-cpp: install
	$(VENV)/bin/cmake -S . -B build/cpp-tests -G Ninja -DBNNKIT_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
	$(VENV)/bin/cmake --build build/cpp-tests
	cd build/cpp-tests && ../../$(VENV)/bin/ctest --output-on-failure

# The same C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-sanitize: install
	$(VENV)/bin/cmake -S . -B build/cpp-asan -G Ninja -DBNNKIT_BUILD_TESTS=ON -DBNNKIT_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	$(VENV)/bin/cmake --build build/cpp-asan
	cd build/cpp-asan && ../../$(VENV)/bin/ctest --output-on-failure

# A quick look at the runtime's speed: a zoo model converted at 32x32, timed at 1 and 2
# threads with its per-op profile (benchmarks/ holds the side-by-side comparisons).
BENCH_MODEL := build/bench/quicknet_small.bnn
$(BENCH_MODEL): $(STAMP_BUILD)
	mkdir -p $(dir $@)
	$(PY) -m bnnkit convert quicknet_small --input-size 32 --num-classes 10 -o $@

bench: install $(BENCH_MODEL)
	$(PY) -m bnnkit bench $(BENCH_MODEL) --profile

# The documentation (Sphinx + MyST, API pages from the docstrings), warnings as errors.
docs: install
	$(PY) -m sphinx -W --keep-going -q -b html docs build/docs
	@echo "docs: build/docs/index.html"

clean:
	rm -rf build $(STAMP_BUILD) $(STAMP_DEPS) $(STAMP_DATA)
