#!/usr/bin/env bash
# One call on the GPU machine (carry .device, made by scripts/device/pack.sh): the CUDA tests, then the benchmarks.
#   bash scripts/device/gpu-run.sh [tests] [gq4] [bench25m] [random8b] [hf8b] [logits8b] [opt] [opt13b] [calibrate]   (default: all but the opt ones and calibrate)
# Splitwise on 2 GPUs (kind nvidia-h200-x2): `tests handover8b` with a plain pack.sh, `splitwise8b` with pack.sh --serve.
# Offloading: `offloadtest offload8b`; pipeline parallelism over two GPUs (x2): `pipelinetest pipeline8b`; FlexGen side by side: `flexgen30b offload30b` with pack.sh --flexgen (x2: 256 GiB host).
# Compressed (x2): `flexgen30bc offload30bc` with pack.sh --flexgen; HF accelerate: `accelerate30b`; OPT-66B (x2): `offload66b`.
# Prediction beside measurement: `calibrate offload30b offload8b` (x2; calibrate prints plan-offload's figures for those policies).
# Output goes to $OUT (files) and stdout.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .device/*.tar.xz; do [ "$f" = .device/classes.tar.xz ] || tar -xJf "$f" -C /tmp; done
tar -xJf .device/classes.tar.xz -C .device
export PATH=/tmp/jre/bin:$PATH
mkdir -p /tmp/shared/models && cp -r .device/shared/models/* /tmp/shared/models/ && ln -sfn /tmp/gutenberg-stories-llama-25m /tmp/shared/models/gutenberg-stories-llama-25m && ln -sfn /tmp/gutenberg-stories-llama-3m /tmp/shared/models/gutenberg-stories-llama-3m
CP=$(ls -d .device/cp/{core,cuda,engine,cluster,bench,offload,server} 2>/dev/null | tr '\n' ':')$(ls .device/lib/*.jar .device/serve-lib/*.jar 2>/dev/null | tr '\n' ':')
JAVA="java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dtandem.shared=/tmp/shared"
tandem() { $JAVA -cp "$CP" dev.tandem.server.cli.Main "$@"; }
steps=${*:-tests bench25m random8b bench8b hf8b logits8b}
# Every step streams its output and has a time limit (STEP_TIMEOUT s): a hung test must not eat the device session.
# junit REPORT_DIR [JUnit selectors and filters...]: the GPU test classes, reports under $OUT/REPORT_DIR.
junit() {
  local reports=$1; shift
  # The JVM's own start-up warnings are dropped; Tandem's logged warnings (WARNING: lines of java.util.logging) stay.
  timeout -k 15 ${STEP_TIMEOUT:-300} $JAVA -jar .device/junit-platform-console-standalone-1.13.4.jar execute \
    --class-path "$CP:.device/cp/core-test:.device/cp/cuda-test:.device/cp/engine-test:.device/cp/cluster-test:.device/cp/offload-test" \
    "$@" --details=testfeed --disable-ansi-colors --reports-dir "$OUT/$reports" 2>&1 | grep --line-buffered -v "^$\|^WARNING: \(A \|Use \|Restricted\|sun\.misc\|java\.lang\)"
}
cuda_tests() {
  junit junit --select-package dev.tandem.cuda --select-package dev.tandem.engine.cuda --select-package dev.tandem.cluster.device \
    --select-class dev.tandem.offload.calibrate.CalibrationTest "$@"
}
thin_progress() {  # offload progress bars: one line per tenth of the run (a run killed at its limit still says how far it got)
  tr '\r' '\n' | awk 'BEGIN { last = -1 }
    /^bench offload \[[# ]*\] [0-9]+\/[0-9]+ \([0-9.]+ s\)$/ {
      match($0, /[0-9]+\/[0-9]+ \(/); split(substr($0, RSTART, RLENGTH - 2), a, "/"); d = int(10 * a[1] / a[2])
      if (d != last) { print; fflush(); last = d }
      next }
    { print; fflush() }'
}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
for s in $steps; do
  echo "=== $s ($(date +%T))"
  case $s in
    tests)
      cuda_tests ;;
    tests1)
      # The single-GPU tests (no NCCL, no split across GPUs).
      cuda_tests --exclude-classname '.*NcclTest' --exclude-package dev.tandem.cluster.device ;;
    tests2)
      # The two-GPU tests: NCCL and the split design's hand-over between GPUs (the 3m model: any pack has it).
      junit junit --select-package dev.tandem.cuda --select-package dev.tandem.cluster.device \
        --include-classname '.*(NcclTest|KvCopyTest)' --include-classname 'dev.tandem.cluster.device.*' ;;
    gq4)
      $JAVA -jar .device/junit-platform-console-standalone-1.13.4.jar execute \
        --class-path "$CP:.device/cp/core-test:.device/cp/cuda-test" --select-class dev.tandem.cuda.backend.CudaGq4Test \
        --details=tree --disable-ansi-colors 2>&1 | tail -20
      $JAVA -cp "$CP:.device/cp/core-test:.device/cp/cuda-test" dev.tandem.cuda.backend.CudaGq4Bench 2>&1 | grep -v WARNING ;;
    offloadtest)
      STEP_TIMEOUT=${STEP_TIMEOUT:-240} junit junit-offload --select-class dev.tandem.offload.exec.OffloadedGeneratorCudaTest \
        --select-class dev.tandem.offload.exec.OptOffloadTest ;;
    junit)
      # Chosen JUnit selectors, e.g. SELECT="--select-method dev.tandem.engine.cuda.CudaEngineTest#promptChunksThatSampleNothingAlone"
      junit junit-selected $SELECT ;;
    pipelinetest)
      # Offloaded generation pipelined over cuda:0 and cuda:1 (the two-stages-on-one-GPU cases run with one GPU) vs one GPU.
      junit junit-pipeline --select-class dev.tandem.offload.exec.PipelinedGeneratorCudaTest ;;
    pipeline8b)
      # The same policy and per-GPU cap on one GPU (two blocks, one after the other) and pipelined over two GPUs (two blocks
      # in flight, half the layers each): the same 512 sequences, prompt 512, generation 32, synthetic Llama-3-8B weights.
      pols=("${POLICY:-64 4 20 80 0 100 0 100}"); [ -n "${PIPE_ONE:-}" ] || pols+=("64 4 20 80 0 100 0 100 cpu-cache-compute")
      for pol in "${pols[@]}"; do
        for dev in "--device cuda:0 --blocks 2" "--pipeline-devices cuda:0,cuda:1"; do
          echo "--- $pol, $dev"
          timeout -k 15 ${STEP_TIMEOUT:-300} $JAVA -cp "$CP" dev.tandem.server.cli.Main bench offload --model llama3-8b $dev --offload "$pol" \
            --gpu-mem 8GiB --cpu-mem 100GiB --prompt-len 512 --gen-len 32 2>&1 | grep -v WARNING | tr '\r' '\n' \
            | grep -v "^bench offload \[[# ]*\] [0-9]*/[0-9]* ([0-9.]* s)$"; done; done ;;
    offload8b)
      # FlexGen's benchmark shape (prompt 512, generation 32) on a Llama-3-8B shape with synthetic weights, GPU capped at 6 GiB.
      for pol in "64 4 100 0 100 0 100 0" "64 4 20 80 0 100 0 100 cpu-cache-compute" "64 4 20 80 0 100 0 100" "64 4 0 50 0 100 0 100 cpu-cache-compute"; do
        cap=8GiB; case "$pol" in "64 4 100 0 100"*) cap=80GiB ;; esac
        tandem bench offload --model llama3-8b --device cuda --offload "$pol" --gpu-mem $cap --cpu-mem 100GiB --disk-dir /tmp/offload-disk \
          --prompt-len 512 --gen-len 32 2>&1 | grep -v WARNING | thin_progress ; done ;;
    offload8bone)
      tandem bench offload --model llama3-8b --device cuda --offload "${POLICY:-64 4 20 80 0 100 0 100 cpu-cache-compute}" --gpu-mem ${CAP:-6GiB} \
        --cpu-mem 100GiB --disk-dir /tmp/offload-disk --prompt-len 512 --gen-len ${GEN:-32} 2>&1 | thin_progress | tail -30; echo "exit ${PIPESTATUS[0]}" ;;
    flexgen30b)
      # The peer: FlexGen's own code, dummy weights, its published T4 policy for OPT-30B, GPU capped at 16 GiB.
      python3 -c "import attr, tqdm" 2>&1 | tail -1
      # CUT (default 8): FlexGen's own --cut-gen-len, which runs that many tokens and projects its decode time to --gen-len.
      timeout -k 15 ${STEP_TIMEOUT:-330} python3 scripts/device/flexgen_peer.py .device/flexgen 16 --model facebook/opt-30b --path _DUMMY_ \
        --offload-dir /tmp/flexgen-offload --prompt-len 512 --gen-len ${GEN:-32} --cut-gen-len ${CUT:-8} --gpu-batch-size 48 --num-gpu-batches 3 \
        --percent 20 80 0 100 0 100 --cpu-cache-compute --log-file $OUT/flexgen30b.log 2>&1 | grep -v "it/s\]" ;;
    offload30b)
      # Tandem on the same shape, policy and cap (synthetic weights, like FlexGen's dummy ones).
      timeout -k 15 ${STEP_TIMEOUT:-330} $JAVA -cp "$CP" dev.tandem.server.cli.Main bench offload --model opt-30b --device cuda \
        --offload "${POLICY:-48 3 20 80 0 100 0 100 cpu-cache-compute}" --gpu-mem 16GiB --cpu-mem 220GiB --prompt-len 512 --gen-len ${GEN:-32} \
        --chunk-rows ${CHUNK:-2048} 2>&1 | grep -v WARNING | thin_progress ;;
    offload66b)
      # The issue's larger shape: OPT-66B, synthetic weights (132 GB in fp16), GPU capped at 16 GiB, the policy plan-offload
      # picks for this host (h200 profile, 16 / 256 GiB: 24 x 3, weights 4.4% GPU, cache and activations on the CPU), or $POLICY.
      timeout -k 15 ${STEP_TIMEOUT:-500} $JAVA -cp "$CP" dev.tandem.server.cli.Main bench offload --model opt-66b --device cuda \
        --offload "${POLICY:-24 3 4.4 95.5 0 100 0 100}" --gpu-mem 16GiB --cpu-mem 230GiB --prompt-len 512 --gen-len ${GEN:-32} \
        --chunk-rows ${CHUNK:-2048} 2>&1 | grep -v WARNING | thin_progress ;;
    flexgen30bc)
      # FlexGen's compressed-cache case for OPT-30B (its bench_suite: 64 x 8, everything on the CPU, --compress-cache).
      timeout -k 15 ${STEP_TIMEOUT:-400} python3 scripts/device/flexgen_peer.py .device/flexgen 16 --model facebook/opt-30b --path _DUMMY_ \
        --offload-dir /tmp/flexgen-offload --prompt-len 512 --gen-len ${GEN:-32} --cut-gen-len ${CUT:-8} --gpu-batch-size 64 --num-gpu-batches 8 \
        --percent 0 100 0 100 0 100 --compress-cache --log-file $OUT/flexgen30bc.log 2>&1 | grep --line-buffered -v "it/s\]" ;;
    offload30bc)
      # Tandem on FlexGen's compressed policy (attention on the GPU over the 4-bit cache brought from the host), or $POLICY.
      timeout -k 15 ${STEP_TIMEOUT:-400} $JAVA -cp "$CP" dev.tandem.server.cli.Main bench offload --model opt-30b --device cuda \
        --offload "${POLICY:-64 8 0 100 0 100 0 100 compress-cache}" --gpu-mem 16GiB --cpu-mem 220GiB --prompt-len 512 --gen-len ${GEN:-32} \
        --chunk-rows ${CHUNK:-2048} 2>&1 | grep -v WARNING | thin_progress ;;
    accelerate30b)
      # The other peer: HF accelerate's device_map offloading of OPT-30B (random weights written by init-random, fp16),
      # GPU capped at 16 GiB, batch $HF_BATCH (default 8), prompt 512, generation 32.
      [ -f /tmp/opt-30b-random/config.json ] || tandem init-random --config opt-30b --dtype f16 --seed 1 --out /tmp/opt-30b-random 2>&1 | grep -v WARNING
      timeout -k 15 ${STEP_TIMEOUT:-400} python3 scripts/device/hf_accelerate.py --model /tmp/opt-30b-random --gpu-mem 16GiB --cpu-mem 200GiB \
        --batch ${HF_BATCH:-8} --prompt-len 512 --gen-len ${GEN:-32} 2>&1 | grep --line-buffered -v "Warning\|warn(" ;;
    bench25m)
      tandem bench steps --model /tmp/gutenberg-stories-llama-25m --device cuda --decode-batches 1,16,64 --prefill 256,512 --context 128 --steps 64 ;;
    random8b)
      tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING ;;
    checkhf)
      python3 scripts/device/check_random_hf.py --help >/dev/null 2>&1; python3 scripts/device/check_random_hf.py /tmp/llama3-8b-random 2>&1 | tail -15 ;;
    bench8b)
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 1,64 --prefill 2048,8192 --context 128 --steps 64 -r 3 ;;
    chunkctx8b)
      # Prefill chunks on top of cached context (a chunked prompt's later chunks, which the simulator's profile of whole
      # prompts does not time): the 8B shape, chunks of 512 and 2048 tokens after 0 to 6144 cached tokens.
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 1 --steps 8 --prefill 256,512,1024,2048 \
        --prefill-context ${CHUNK_CONTEXTS:-0,1024,2048,4096,6144} -r 3 2>&1 | grep -v WARNING ;;
    profsteps8b)
      # The profile's prompt times beside bench steps' for the same prefill lengths (issue 6: the profile's came out ~10%
      # under the engine's): the profile times each prefill after a decode phase (token size 64, then 1), bench steps back to back.
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      for ts in 64 1; do
        tandem profile --model /tmp/llama3-8b-random --device cuda --out "$OUT/prof-ts$ts.csv" --model-name llama3-8b \
          --prompt-sizes 512,1024,2048 --batch-sizes 1 --token-size $ts -r 3 --power-seconds 1 2>&1 | grep -v WARNING
      done
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches "" --prefill 512,1024,2048 -r 5 2>&1 | grep -v WARNING ;;
    oddrows8b)
      # Prefill steps of the odd token counts serving makes (several prompts' chunks in one step) beside round ones:
      # whether cuBLASLt's heuristic choice for an unaligned row count costs more than its share (issue 6).
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches "" --prefill ${ODD_ROWS:-1024,1100,1301,1465,1536,1742,1999,2048} -r 5 2>&1 | grep -v WARNING ;;
    mixed8b)
      # Mixed steps (decode rows and a new prompt in one forward pass, as chunked prefill runs them) beside the pure
      # prefill and decode steps of the same sizes; then one mixed case with the per-op profile (every op synchronised).
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 8,32 --steps 16 --prefill 256,512,1024 \
        --mixed-decodes 8,32 --context 1024 -r 5 2>&1 | grep -v WARNING
      TANDEM_CUDA_PROFILE=1 bash -c "$(declare -f tandem); JAVA='$JAVA'; CP='$CP'; tandem bench steps --model /tmp/llama3-8b-random --device cuda \
        --decode-batches 32 --steps 8 --prefill 512 --mixed-decodes 32 --context 1024 -r 3" 2>&1 | grep -v WARNING | tail -45 ;;
    variants8b)
      for v in "TANDEM_GEMV=0"; do
        echo "--- $v"; env $v bash -c "$(declare -f tandem); JAVA='$JAVA'; CP='$CP'; tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 1,64 --prefill 2048 --context 128 --steps 32 -r 3" 2>&1 | grep '^|'
      done ;;
    decodeattn8b)
      # Decode steps of the 8B shape over long contexts: the tiled decode attention kernel against the older one
      # (TANDEM_DECODE_ATTENTION=split), then where the time of a batch-32 step over 2,048 tokens goes.
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      for ctx in ${DECODE_CONTEXTS:-128 1024 4096}; do
        for v in split tiled; do
          echo "--- $v, context $ctx"
          TANDEM_DECODE_ATTENTION=$v tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches ${DECODE_BATCHES:-1,16,64} --prefill= --context $ctx --steps 32 -r 1 2>&1 | grep --line-buffered '^| decode'
        done
      done
      for v in split tiled; do
        echo "--- profile, $v"
        TANDEM_DECODE_ATTENTION=$v TANDEM_CUDA_PROFILE=1 tandem bench steps --model /tmp/llama3-8b-random --device cuda --decode-batches 32 --prefill= --context 2048 --steps 16 -r 1 2>&1 | grep -v WARNING | head -24
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
    handover8b)
      # Splitwise's KV hand-over on the 8B shape: prompt engine on cuda:0, token engine on cuda:1 (NCCL over NVLink),
      # against one colocated engine on cuda:0; one prefill pass per prompt; then the link alone in GB/s.
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      for p in ${HANDOVER_PROMPTS:-512 2048 8192}; do
        echo "--- prompt $p"
        tandem bench handover --model /tmp/llama3-8b-random --device cuda:0 --token-device cuda:1 -p $p --ubatch $p -r 5 2>&1 | grep -v WARNING
      done ;;
    splitwise8b|splitwise4gpu)
      # Splitwise vs colocated (pack.sh --serve), every design's cluster up at once, designs interleaved at each rate;
      # Poisson arrivals with the Azure traces' sizes; goodput at Splitwise's SLOs (relative to each design's own
      # unloaded latency). Each server first takes a short unrecorded run (JIT, GEMM algorithms, graphs).
      #   splitwise8b:   2 GPUs: split (prompt worker on cuda:0, token worker on cuda:1) vs mixed (a mixed worker on each)
      #   splitwise4gpu: 4 GPUs: split with the mixed pool (2 prompt + 2 token workers) vs 4 mixed workers
      # SW_DURATION (s per run, default 10), SW_CONV_RATES / SW_CODE_RATES (req/s lists) change the sweep; SW_MIXED512=1
      # adds the colocated design with a 512-token step budget (less prefill in each decode step); SW_KV: KV memory per worker.
      [ -d .device/serve-lib ] || { echo "$s needs the server's jars: run scripts/device/pack.sh --serve here"; continue; }
      [ -f /tmp/llama3-8b-random/config.json ] || tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out /tmp/llama3-8b-random 2>&1 | grep -v WARNING
      opts="--model /tmp/llama3-8b-random --device cuda --max-num-seqs 128 --kv-cache-memory ${SW_KV:-40G}"
      if [ $s = splitwise8b ]; then
        designs=("mixed|--design mixed --prompt-workers 1 --token-workers 1 --max-num-batched-tokens 2048"
                 "split|--design split --prompt-workers 1 --token-workers 1 --max-num-batched-tokens 2048")
        [ -n "${SW_MIXED512:-}" ] && designs+=("mixed512|--design mixed --prompt-workers 1 --token-workers 1 --max-num-batched-tokens 512")
        conv_rates=${SW_CONV_RATES:-6,16,32}; code_rates=${SW_CODE_RATES:-4,10,20}
      else
        designs=("mixed4|--design mixed --prompt-workers 2 --token-workers 2 --max-num-batched-tokens 2048"
                 "splitpool4|--design split-mixed-pool --prompt-workers 2 --token-workers 2 --max-num-batched-tokens 2048")
        conv_rates=${SW4_CONV_RATES:-16,32,48}; code_rates=${SW4_CODE_RATES:-8,20,32}
      fi
      names=(); ports=(); pids=(); logs=()
      for i in "${!designs[@]}"; do
        d=${designs[$i]}; names+=("${d%%|*}"); ports+=($((8100 + i))); logs+=("serve-${d%%|*}.log")
        # exec: $! is the JVM itself, so that the kill below reaches it
        # -Dtandem.stepLog: each engine logs its steps by kind every SW_STEP_LOG s (mean / max ms, tokens) into serve-*.log
        (exec $JAVA -Dtandem.stepLog=${SW_STEP_LOG:-2} -cp "$CP" dev.tandem.server.cli.Main serve $opts ${d#*|} --port $((8100 + i))) > "$OUT/serve-${d%%|*}.log" 2>&1 & pids+=($!)
      done
      up() { for i in $(seq 300); do kill -0 $2 2>/dev/null || return 1; python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$1/v1/models', timeout=2)" 2>/dev/null && return 0; sleep 1; done; return 1; }
      bench() {  # port trace rate dir
        timeout $(( ${SW_DURATION:-10} * 4 + 60 )) $JAVA -cp "$CP" dev.tandem.server.cli.Main bench serve --url http://127.0.0.1:$1 --tokenizer /tmp/llama3-8b-random \
          --trace /tmp/traces/AzureLLMInferenceTrace_$2.csv --rate $3 --duration ${SW_DURATION:-10} --max-context 8192 --no-progress --out "$4" > "$4.txt" 2>&1
      }
      ok=yes; for i in "${!names[@]}"; do up ${ports[$i]} ${pids[$i]} || ok=no; done
      if [ $ok = yes ]; then
        echo "servers up ($(date +%T))"
        for i in "${!names[@]}"; do bench ${ports[$i]} conv 8 /tmp/warm-${names[$i]}; done
        echo "warmed up ($(date +%T))"
        echo "| trace | rate (req/s) | design | completed / issued | TTFT p50 / p90 (ms) | mean TBT p50 / p90 (ms) | E2E p90 (ms) | good | goodput (req/s) |"
        echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
        for tr in conv:$conv_rates code:$code_rates; do
          trace=${tr%%:*}; n=0
          for rate in $(echo ${tr#*:} | tr ',' ' '); do
            n=$((n + 1)); order=("${!names[@]}"); [ $((n % 2)) = 0 ] && order=($(printf '%s\n' "${!names[@]}" | tac))
            for i in "${order[@]}"; do
              name=${names[$i]}; dir="$OUT/sw-$trace-$rate-$name"
              bench ${ports[$i]} $trace $rate "$dir" || { echo "| $trace | $rate | $name | bench serve failed: $(grep -v WARNING "$dir.txt" | tail -2 | tr '\n' ' ') |"; continue; }
              awk -F'|' -v tr=$trace -v rate=$rate -v d=$name '
                /^\| issued \|/ {getline; getline; iss=$2; comp=$3}
                /^\| TTFT \|/ && ttft == "" {ttft=$5 "/" $6}
                /^\| TBT \(mean per request\) \|/ && tbt == "" {tbt=$5 "/" $6}
                /^\| E2E \|/ && e2e == "" {e2e=$6}
                /^\| good requests \|/ {getline; getline; good=$3; gp=$4}
                END {printf "| %s | %s | %s | %s / %s | %s | %s | %s | %s | %s |\n", tr, rate, d, comp, iss, ttft, tbt, e2e, good, gp}' "$dir.txt"
              rm -f "$dir"/*.png
            done
          done
        done
        for l in "${logs[@]}"; do grep -h "ready\|error\|Exception" "$OUT/$l" | head -3; done
      else
        echo "a server did not come up:"; for l in "${logs[@]}"; do tail -20 "$OUT/$l"; done
      fi
      kill "${pids[@]}" 2>/dev/null
      for i in $(seq 40); do alive=no; for p in "${pids[@]}"; do kill -0 $p 2>/dev/null && alive=yes; done; [ $alive = no ] && break; sleep 0.5; done
      kill -9 "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
      # one archive: only a few files come back from a device call
      (cd "$OUT" && tar -czf $s-runs.tar.gz sw-* "${logs[@]}" && rm -rf sw-* "${logs[@]}") ;;
    hf8b)
      python3 scripts/device/hf_bench.py --model /tmp/llama3-8b-random --decode-batches 1,64 --prefill 2048,8192 --context 128 --steps 32 ;;
    logits8b)
      tandem logits --model /tmp/llama3-8b-random --device cuda --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --out /tmp/tandem_bf16.bin && tandem logits --model /tmp/llama3-8b-random --device cuda --precision f32 --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --out /tmp/tandem_f32.bin &&
      python3 scripts/device/compare_logits.py --model /tmp/llama3-8b-random --ids 1,15,300,4000,77,1234,98765,5,6,7,42,128000 --tandem /tmp/tandem_bf16.bin /tmp/tandem_f32.bin ;;
    opt)
      # OPT against transformers; the goldens of OptGoldenTest land in $OUT/opt-tiny-hf-golden.json
      python3 scripts/device/check_opt.py --tandem "$JAVA -cp $CP dev.tandem.server.cli.Main" --work /tmp/opt-check \
        --out "$OUT/opt-tiny-hf-golden.json" 2>&1 | grep -v Warning ;;
    opt13b)
      # OPT-13B in GPU memory (26 GB bf16), Tandem beside transformers on the same steps: the in-memory baseline of issue 7
      tandem init-random --config opt-13b --dtype bf16 --seed 1 --out /tmp/opt-13b-random 2>&1 | grep -v WARNING
      tandem bench steps --model /tmp/opt-13b-random --device cuda --decode-batches 1,64 --prefill 512,2048 --context 512 --steps 32 -r 3 2>&1 | grep -v WARNING
      python3 scripts/device/hf_bench.py --model /tmp/opt-13b-random --decode-batches 1,64 --prefill 512,2048 --context 512 --steps 32 ;;
    calibrate)  # the offloading cost model's constants on this machine (issue 7), then its predictions for what offload30b / offload8b run
      # One profile per shape: the layer probe and HostAttention's probe run at that model's sizes, GPU batch and prefill chunk.
      tandem calibrate --device cuda --disk-dir /tmp --disk-bytes 8G --model opt-30b --gpu-batch 48 --chunk-rows ${CHUNK:-2048} \
        --name h200-calibrated-opt30b --out "$OUT/h200-calibrated-opt30b.json" 2>&1 | grep -v WARNING
      tandem calibrate --device cuda --disk-dir /tmp --disk-bytes 8G --model llama3-8b --gpu-batch 64 --chunk-rows 4096 \
        --name h200-calibrated-llama3-8b --out "$OUT/h200-calibrated-llama3-8b.json" 2>&1 | grep -v WARNING
      predict() {  # profile model gpu-mem cpu-mem policy
        echo "--- prediction: $2, --gpu-mem $3 --cpu-mem $4, policy \"$5\""
        tandem plan-offload --hardware "$1" --model $2 --gpu-mem $3 --cpu-mem $4 --prompt-len 512 --gen-len 32 --policy "$5" 2>&1 \
          | grep -v WARNING | grep "^| prefill\|^| decode\|^time:\|^predicted\|^bottleneck\|^times"
      }
      predict "$OUT/h200-calibrated-opt30b.json" opt-30b 16GiB 220GiB "${POLICY:-48 3 20 80 0 100 0 100 cpu-cache-compute}"
      for pol in "64 4 100 0 100 0 100 0" "64 4 20 80 0 100 0 100 cpu-cache-compute" "64 4 20 80 0 100 0 100" "64 4 0 50 0 100 0 100 cpu-cache-compute"; do
        cap=8GiB; case "$pol" in "64 4 100 0 100"*) cap=80GiB ;; esac
        predict "$OUT/h200-calibrated-llama3-8b.json" llama3-8b $cap 100GiB "$pol"; done
      echo "--- the search's own choice for OPT-30B at 16 GiB"
      tandem plan-offload --model opt-30b --hardware "$OUT/h200-calibrated-opt30b.json" --gpu-mem 16GiB --prompt-len 512 --gen-len 32 2>&1 | grep -v WARNING ;;
    *) echo "unknown step $s" ;;
  esac
done
