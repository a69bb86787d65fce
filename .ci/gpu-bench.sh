#!/usr/bin/env bash
# The GPU benchmark, as one prepared script for a machine with an NVIDIA GPU
# (the `device` tool's machine): the same table as `cargo xtask bench-train`,
# on the real GPU through Vulkan (wgpu's SPIR-V path) and, where the `cuda`
# feature builds, through CUDA. Writes its output to ${OUT:-target}/gpu-bench.txt.
#
#   bash .ci/gpu-bench.sh
#
# The `cuda` feature's build downloads a prebuilt LLVM (cubecl-llvm, nvptx) from
# GitHub; on a machine that cannot reach it, that step is reported as failed and
# the Vulkan figures stand alone.
set -uo pipefail
out="${OUT:-target}"
mkdir -p "$out"
log="$out/gpu-bench.txt"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null
} >"$log"
cargo build --release -p floe-exporter --bin floe --features autotune 2>&1 | tail -3 >>"$log"
./target/release/floe bench-train --devices cpu,vulkan --batches 256,4096 --reps 10 >>"$log" 2>&1 \
  || echo "bench-train on vulkan failed (rc $?)" >>"$log"
if timeout 300 cargo build --release -p floe-exporter --bin floe --features cuda >>"$log" 2>&1; then
  ./target/release/floe bench-train --devices cpu,cuda --batches 256,4096 --reps 10 >>"$log" 2>&1 \
    || echo "bench-train on cuda failed (rc $?)" >>"$log"
else
  echo "the cuda feature did not build here (see above)" >>"$log"
fi
cat "$log"
