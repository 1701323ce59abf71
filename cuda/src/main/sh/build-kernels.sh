#!/usr/bin/env bash
# Compiles Tandem's CUDA kernels into a fatbin resource when nvcc is available (sm_80 and sm_90 code plus
# compute_90 PTX, which newer GPUs JIT-compile). Without nvcc the build goes on: NVRTC compiles the
# packaged source at run time instead.
set -euo pipefail
src="$1"; out="$2"
nvcc_bin="$(command -v nvcc || true)"
for c in "${CUDA_HOME:-}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
  [[ -z "$nvcc_bin" && -x "$c" ]] && nvcc_bin="$c"
done
if [[ -z "$nvcc_bin" ]]; then
  echo "[tandem] nvcc not found: CUDA kernels will be compiled by NVRTC at run time"
  exit 0
fi
mkdir -p "$(dirname "$out")"
if [[ -f "$out" && "$out" -nt "$src" ]]; then exit 0; fi
"$nvcc_bin" -O3 -std=c++17 -fatbin \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  -o "$out" "$src"
echo "[tandem] compiled $(basename "$src") with $nvcc_bin -> $out"
