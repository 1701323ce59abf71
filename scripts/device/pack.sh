#!/usr/bin/env bash
# Packs what a GPU-machine run needs into .device (git-ignored; carry it): a Java 25 runtime, the test models
# (gutenberg 25m + golden outputs), Tandem's classes and their runtime jars, the JUnit console launcher and the
# Azure traces. The fat server jar is too big to travel with the models (64 MiB per run), so the device runs from
# class dirs.
#   here:   mvn -q install -DskipTests && scripts/device/pack.sh [--serve] [--flexgen]
#   device: bash scripts/device/gpu-run.sh   (see that script)
# --serve packs for the serving benchmarks (gpu-run.sh splitwise8b): the HTTP server's jars (Helidon, Jinjava,
# Prometheus, JFreeChart: ~17 MB) instead of the 25m test model, which it sets aside in .device-stash (a plain pack.sh
# puts it back), so that the pack stays under 64 MiB either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=../shared
serve=no; [[ " $* " == *" --serve "* ]] && serve=yes
mkdir -p .device .device-stash
for m in gutenberg-stories-llama-25m gutenberg-stories-llama-3m; do   # back from a --serve pack
  [ -f .device-stash/$m.tar.xz ] && [ ! -f .device/$m.tar.xz ] && mv .device-stash/$m.tar.xz .device/
done
[ -f .device/jre.tar.xz ] || ../shared/tools/device-jre >/dev/null
[ -f .device/gutenberg-stories-llama-25m.tar.xz ] || ../shared/tools/device-jre --model $shared/models/gutenberg-stories-llama-25m >/dev/null
# the draft of the speculative-decoding pair (issue 8)
[ -f .device/gutenberg-stories-llama-3m.tar.xz ] || tar -C $shared/models -cf - gutenberg-stories-llama-3m | xz -9 -T0 > .device/gutenberg-stories-llama-3m.tar.xz
rm -rf .device/cp .device/lib && mkdir -p .device/cp .device/lib .device/shared/models/gutenberg-stories
cp $shared/models/gutenberg-stories/golden.json .device/shared/models/gutenberg-stories/
for m in core cuda engine cluster bench offload server; do
  [ -d $m/target/classes ] && cp -r $m/target/classes .device/cp/$m
done
for m in core cuda engine cluster offload; do cp -r $m/target/test-classes .device/cp/$m-test; done
# Runtime jars of core/cuda/server's CLI paths that the device uses (Jackson, ojAlgo for plan-offload; no HTTP stack).
mvn -q -o -pl server dependency:build-classpath -Dmdep.outputFile=/tmp/tandem-cp.txt >/dev/null
tr ':' '\n' < /tmp/tandem-cp.txt | grep -E 'jackson-(core|databind|annotations|dataformat-yaml)-|snakeyaml|ojalgo-' | xargs -I{} cp {} .device/lib/
[ -f .device/junit-platform-console-standalone-1.13.4.jar ] || \
  mvn -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.13.4 -DoutputDirectory=.device
tar -C .device -cJf .device/classes.tar.xz cp && rm -rf .device/cp   # unpacked by gpu-run.sh
# The Azure traces for `bench serve` (unpacked to /tmp/traces by gpu-run.sh).
[ -f .device/traces.tar.xz ] || tar -C $shared -cJf .device/traces.tar.xz traces/AzureLLMInferenceTrace_conv.csv traces/AzureLLMInferenceTrace_code.csv
rm -rf .device/serve-lib
if [ $serve = yes ]; then
  mkdir -p .device/serve-lib
  # Everything the server's runtime class path holds but the OpenAI SDK (test client), Kotlin/OkHttp, gRPC (process
  # clusters) and JUnit: the embedded `serve` and `bench serve` need none of them.
  mvn -q -o -pl server dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile=/tmp/tandem-serve-cp.txt >/dev/null
  tr ':' '\n' < /tmp/tandem-serve-cp.txt | grep -vE '/(openai-java|kotlin|okhttp|okio|grpc-|junit|tandem-|opentest4j|apiguardian|jsonschema|gson|error_prone|animal-sniffer|perfmark|proto)[^/]*\.jar$' \
    | xargs -I{} cp {} .device/serve-lib/
  # The 25m test model is set aside; the 3m one (4.6 MB) stays for the two-GPU tests (gpu-run.sh tests2).
  [ -f .device/gutenberg-stories-llama-25m.tar.xz ] && mv .device/gutenberg-stories-llama-25m.tar.xz .device-stash/
  echo "--serve: the 25m test model set aside in .device-stash (gpu-run.sh tests needs a plain pack.sh; tests2 runs with either)"
fi
# --flexgen: FlexGen's Python package from its public repository (the peer of `bench offload`; never committed).
if [[ " $* " == *" --flexgen "* ]]; then
  mirror=/work/.mirror/FMInference+FlexGen/repo
  rm -rf .device/flexgen && mkdir -p .device/flexgen/flexgen
  for f in __init__ compression opt_config pytorch_backend timer utils flex_opt; do
    git --git-dir=$mirror show HEAD:flexgen/$f.py > .device/flexgen/flexgen/$f.py
  done
fi
rm -f .device/tandem.jar; rm -rf .device/classes .device/tok
# 64 MiB travel with a run, the working tree included: with both test models a plain pack is just over, so the
# 3m draft (speculative decoding's GPU test) is set aside then; `--serve` packs keep it for the two-GPU tests.
if [ $serve = no ] && [ "$(du -sm .device | cut -f1)" -gt 61 ] && [ -f .device/gutenberg-stories-llama-3m.tar.xz ]; then
  mv .device/gutenberg-stories-llama-3m.tar.xz .device-stash/
  echo "the 3m draft model set aside in .device-stash (size): CudaEngineTest's speculative case and tests2 need it back"
fi
echo "packed .device: $(du -sh .device | cut -f1) (64 MiB at most travel with a run)"
