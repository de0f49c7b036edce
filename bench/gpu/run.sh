#!/usr/bin/env bash
# Builds, checks and times the CUDA backend in one command: the gpu tests (tests/gpu), then
# the GPU benchmarks (moe_gemm_bench, decode_step_bench). BUILD_DIR is either a CUDA build
# directory (cmake -DMOESERVE_CUDA=ON; the targets are built first) or a bundle unpacked
# from `scripts/gpu_test_bundle.sh BUILD_DIR OUT.tar.xz --bench` on a machine that cannot
# build (no Abseil, spdlog, GoogleTest...): bin/ tests, bench/ benchmarks, lib/ libraries.
#   bench/gpu/run.sh build-cuda [LOG_DIR]
#   MOESERVE_SOURCE_DIR=/path/to/checkout /tmp/g/run.sh /tmp/g [LOG_DIR]
# The tests read fixtures under $MOESERVE_SOURCE_DIR (default: the checkout this script is
# in, if any). With LOG_DIR, the outputs also go to LOG_DIR/{tests,moe_gemm_bench,
# decode_step_bench}.log. Exits non-zero when a test or benchmark fails; the benchmarks run
# even after a failed test, and say so. MOESERVE_GPU_TEST_TIMEOUT (seconds, default 900)
# bounds each test binary, so a hung test cannot hold the machine.
set -uo pipefail
dir=${1:?usage: run.sh BUILD_DIR [LOG_DIR]}
logs=${2:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tests=(cuda_device_test cuda_ops_test cuda_attention_test cuda_moe_test model_parity_test
       engine_gpu_test)
benches=(moe_gemm_bench decode_step_bench)

if [ -f "$dir/CMakeCache.txt" ]; then
  cmake --build "$dir" -j"$(nproc)" --target "${tests[@]}" "${benches[@]}" || exit 1
  test_dir=$dir/tests/gpu
  bench_dir=$dir/bench/gpu
elif [ -d "$dir/bin" ] && [ -d "$dir/bench" ] && [ -d "$dir/lib" ]; then
  test_dir=$dir/bin
  bench_dir=$dir/bench
  export LD_LIBRARY_PATH="$dir/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  echo "run.sh: $dir is neither a CMake build directory nor an unpacked bundle" >&2
  exit 2
fi
if [ -z "${MOESERVE_SOURCE_DIR:-}" ] && [ -d "$here/../../tests/fixtures" ]; then
  MOESERVE_SOURCE_DIR=$(cd "$here/../.." && pwd)
  export MOESERVE_SOURCE_DIR
fi
if [ -n "$logs" ]; then
  mkdir -p "$logs"
  : >"$logs/tests.log"
fi

log() {  # log NAME: stdin to the terminal and, with LOG_DIR, to LOG_DIR/NAME.log
  if [ -n "$logs" ]; then tee -a "$logs/$1.log"; else cat; fi
}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader
failed=()
for t in "${tests[@]}"; do
  if [ ! -x "$test_dir/$t" ]; then
    echo "MISSING: $test_dir/$t" | log tests
    failed+=("$t")
    continue
  fi
  echo "=== $t" | log tests
  timeout "${MOESERVE_GPU_TEST_TIMEOUT:-900}" "$test_dir/$t" --gtest_brief=1 2>&1 | log tests ||
    failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu tests FAILED: ${failed[*]} (timing the benchmarks anyway)" | log tests
else
  echo "gpu tests: none of ${#tests[@]} failed (skips, if any, are listed above)" | log tests
fi
for b in "${benches[@]}"; do
  echo "=== $b"
  if [ -n "$logs" ]; then : >"$logs/$b.log"; fi
  "$bench_dir/$b" 2>&1 | log "$b" || failed+=("$b")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "run.sh: gpu tests and benchmarks done"
