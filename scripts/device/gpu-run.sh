#!/usr/bin/env bash
# One call on the GPU machine (carry .device, made by scripts/device/pack.sh): the CUDA tests, then the benchmarks.
#   bash scripts/device/gpu-run.sh [tests] [gq4] [bench25m] [random8b] [hf8b] [logits8b]   (default: all)
# Output goes to $OUT (files) and stdout.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .device/*.tar.xz; do [ "$f" = .device/classes.tar.xz ] || tar -xJf "$f" -C /tmp; done
tar -xJf .device/classes.tar.xz -C .device
export PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/shared/models && cp -r .device/shared/models/* /tmp/shared/models/ && ln -sfn /tmp/gutenberg-stories-llama-25m /tmp/shared/models/gutenberg-stories-llama-25m && ln -sfn /tmp/gutenberg-stories-llama-3m /tmp/shared/models/gutenberg-stories-llama-3m
CP=$(ls -d .device/cp/{core,cuda,engine,cluster,bench,server} 2>/dev/null | tr '\n' ':')$(ls .device/lib/*.jar | tr '\n' ':')
JAVA="java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dtandem.shared=/tmp/shared"
tandem() { $JAVA -cp "$CP" dev.tandem.server.cli.Main "$@"; }
steps=${*:-tests bench25m random8b bench8b hf8b logits8b}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
for s in $steps; do
  echo "=== $s ($(date +%T))"
  case $s in
    tests)
      $JAVA -jar .device/junit-platform-console-standalone-1.13.4.jar execute \
        --class-path "$CP:.device/cp/core-test:.device/cp/cuda-test:.device/cp/engine-test" --select-package dev.tandem.cuda \
        --select-package dev.tandem.engine.cuda \
        --details=summary --disable-ansi-colors --reports-dir "$OUT/junit" 2>&1 | tail -60 ;;
    gq4)
      $JAVA -jar .device/junit-platform-console-standalone-1.13.4.jar execute \
        --class-path "$CP:.device/cp/core-test:.device/cp/cuda-test" --select-class dev.tandem.cuda.backend.CudaGq4Test \
        --details=tree --disable-ansi-colors 2>&1 | tail -20
      $JAVA -cp "$CP:.device/cp/core-test:.device/cp/cuda-test" dev.tandem.cuda.backend.CudaGq4Bench 2>&1 | grep -v WARNING ;;
    bench25m)
      tandem bench steps --model /tmp/gutenberg-stories-llama-25m --device cuda --decode-batches 1,16,64 --prefill 256,512 --context 128 --steps 64 ;;
    random8b)
      tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING ;;
    checkhf)
      python3 scripts/device/check_random_hf.py --help >/dev/null 2>&1; python3 scripts/device/check_random_hf.py /tmp/llama3-8b-random 2>&1 | tail -15 ;;
    bench8b)
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 1,64 --prefill 2048,8192 --context 128 --steps 64 -r 3 ;;
    variants8b)
      for v in "TANDEM_GEMV=0"; do
        echo "--- $v"; env $v bash -c "$(declare -f tandem); JAVA='$JAVA'; CP='$CP'; tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 1,64 --prefill 2048 --context 128 --steps 32 -r 3" 2>&1 | grep '^|'
      done ;;
    profile8b)
      for args in "--decode-batches 1 --prefill=" "--decode-batches= --prefill 2048 -r 2" "--decode-batches= --prefill 8192 -r 1"; do
        TANDEM_CUDA_PROFILE=1 tandem bench steps --model /tmp/llama3-8b-random --device cuda --steps 16 $args 2>&1 | grep -v WARNING | head -40
      done ;;
    spec25m)
      tandem bench spec --model /tmp/gutenberg-stories-llama-25m --draft-model /tmp/gutenberg-stories-llama-3m --device cuda --k 2,3,4,adaptive --batch 1 --temperature 0 -r 3 2>&1 | grep -v WARNING
      tandem bench spec --model /tmp/gutenberg-stories-llama-25m --draft ngram --device cuda --k 2,3,4,adaptive --batch 1 --temperature 0 -r 3 2>&1 | grep -v WARNING ;;
    hfassist)
      python3 scripts/device/hf_assisted.py --target /tmp/gutenberg-stories-llama-25m --draft /tmp/gutenberg-stories-llama-3m --golden /tmp/shared/models/gutenberg-stories/golden.json 2>&1 | grep -v Warning | tail -3 ;;
    draft1b)
      tandem init-random --config scripts/device/configs/llama3.2-1b.json --dtype bf16 --seed 2 --out /tmp/llama3.2-1b-random 2>&1 | grep -v WARNING
      tandem bench steps --model /tmp/llama3.2-1b-random --device cuda --decode-batches 1 --prefill= --context 128 --steps 64 2>&1 | grep '^|' ;;
    passcost8b)
      tandem bench spec --model /tmp/llama3-8b-random --device cuda --pass-cost 2>&1 | grep -v WARNING ;;
    profile-sim)
      tandem profile --model /tmp/llama3-8b-random --device cuda --out "$OUT/h200-llama3-8b.csv" --model-name llama3-8b \
        --prompt-sizes 128,256,512,1024,2048,4096 --batch-sizes 1,2,4,8,16,32,64 --token-size 64 -r 1 --power-seconds 1 2>&1 | grep -v WARNING ;;
    hf8b)
      python3 scripts/device/hf_bench.py --model /tmp/llama3-8b-random --decode-batches 1,64 --prefill 2048,8192 --context 128 --steps 32 ;;
    logits8b)
      tandem logits --model /tmp/llama3-8b-random --device cuda --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --out /tmp/tandem_bf16.bin && tandem logits --model /tmp/llama3-8b-random --device cuda --precision f32 --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --out /tmp/tandem_f32.bin &&
      python3 scripts/device/compare_logits.py --model /tmp/llama3-8b-random --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --tandem /tmp/tandem_bf16.bin /tmp/tandem_f32.bin ;;
    *) echo "unknown step $s" ;;
  esac
done
