# The two commands every user needs (see README.md):
#   make serve   installs what is missing, builds, prepares the default model and serves it
#   make test    installs what is missing, builds and runs every test
BUILD_DIR ?= build
JOBS ?= 2
HOST ?= 127.0.0.1
PORT ?= 8000
MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
CMAKE_FLAGS ?=

.PHONY: all bootstrap configure build test test-unit test-e2e serve format clean

all: build

bootstrap:
	@scripts/bootstrap.sh

configure: bootstrap
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)
	MOESERVE_BIN=$(BUILD_DIR)/server/moeserve MOESERVE_MODEL=$(MODEL) \
	  .venv/bin/python -m pytest -q tests/e2e

serve: build
	$(BUILD_DIR)/server/moeserve --model $(MODEL) --host $(HOST) --port $(PORT)

format:
	@git ls-files '*.cc' '*.h' '*.cu' '*.cuh' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
