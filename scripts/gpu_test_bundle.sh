#!/usr/bin/env bash
# Packs the GPU test binaries of a CUDA build for a machine that has the NVIDIA driver and
# CUDA's libraries but none of our build dependencies (Abseil, spdlog, GoogleTest, OpenBLAS,
# ICU): stripped binaries plus every shared library they need except glibc's and cuBLAS's
# (those come from the target machine, /usr/local/cuda/lib64). Usage:
#   scripts/gpu_test_bundle.sh BUILD_DIR OUT.tar.xz [--bench] [test ...]
# --bench also packs the GPU benchmarks (bench/gpu) under bench/ and bench/gpu/run.sh at the
# top, and makes the default test list every test of tests/gpu (what run.sh runs).
# On the GPU machine:
#   mkdir -p /tmp/g && tar -xJf OUT.tar.xz -C /tmp/g
#   export LD_LIBRARY_PATH=/tmp/g/lib:/usr/local/cuda/lib64
#   for t in /tmp/g/bin/*; do "$t" || echo "FAILED: $t"; done
# or, with --bench, from a checkout (for the test fixtures):
#   MOESERVE_SOURCE_DIR=$PWD /tmp/g/run.sh /tmp/g [LOG_DIR]
set -euo pipefail
build_dir=${1:?build dir}
out=${2:?output .tar.xz}
shift 2
with_bench=0
if [ "${1:-}" = "--bench" ]; then
  with_bench=1
  shift
fi
tests=("$@")
benches=()
if [ "$with_bench" -eq 1 ]; then
  benches=(moe_gemm_bench decode_step_bench)
  if [ ${#tests[@]} -eq 0 ]; then
    tests=(cuda_device_test cuda_ops_test cuda_attention_test cuda_moe_test model_parity_test
           engine_gpu_test)
  fi
fi
if [ ${#tests[@]} -eq 0 ]; then
  tests=(cuda_device_test cuda_ops_test cuda_attention_test cuda_moe_test)
fi
cmake --build "$build_dir" -j"$(nproc)" --target "${tests[@]}" "${benches[@]}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
for t in "${tests[@]}"; do
  strip -o "$stage/bin/$t" "$build_dir/tests/gpu/$t"
done
dirs=(bin lib)
if [ "$with_bench" -eq 1 ]; then
  mkdir -p "$stage/bench"
  for b in "${benches[@]}"; do
    strip -o "$stage/bench/$b" "$build_dir/bench/gpu/$b"
  done
  cp "$(dirname "$0")/../bench/gpu/run.sh" "$stage/run.sh"
  dirs+=(bench run.sh)
fi
for t in "$stage"/bin/* "$stage"/bench/*; do
  [ -f "$t" ] || continue
  ldd "$t" | awk '$3 ~ /^\// {print $3}'
done | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt)\.so|ld-linux|libcublas' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
XZ_OPT=-1 tar -cJf "$out" -C "$stage" "${dirs[@]}"
echo "wrote $out ($(du -h "$out" | cut -f1))"
