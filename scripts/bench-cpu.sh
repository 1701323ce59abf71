#!/usr/bin/env bash
# CPU benchmark, side by side with llama.cpp in one run (issue 2):
# a random-weight 110M Llama (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000) in F32, Q8_0 and Q4_0,
# written by `tandem init-random`, measured by `tandem bench generate` and by llama.cpp's llama-bench on the
# very same GGUF files. llama.cpp is not part of this repository: build it yourself and point LLAMA_BENCH at
# its llama-bench binary (see BENCHMARKS.md). Usage: LLAMA_BENCH=/path/to/llama-bench scripts/bench-cpu.sh [OUTDIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/bench-out}"
THREADS="${THREADS:-$(nproc)}"
P="${P:-512}" N="${N:-128}" R="${R:-5}"
mkdir -p "$OUT"
for t in f32 q8_0 q4_0; do
  f="$OUT/llama-110m-$t.gguf"
  [ -f "$f" ] || "$ROOT/tandem" init-random --config llama-110m --dtype "$t" --seed 1 --out "$f"
done
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads"
for t in f32 q8_0 q4_0; do
  f="$OUT/llama-110m-$t.gguf"
  echo "## $t"
  echo "### tandem"
  "$ROOT/tandem" bench generate --model "$f" -p "$P" -n "$N" -r "$R" --threads "$THREADS" 2>/dev/null
  if [ -n "${LLAMA_BENCH:-}" ]; then
    echo "### llama.cpp"
    "$LLAMA_BENCH" -m "$f" -p "$P" -n "$N" -r "$R" -t "$THREADS" 2>/dev/null | grep -E '^\|'
  fi
done
