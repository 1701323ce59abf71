#!/usr/bin/env bash
# Runs the GPU tests (which skip on CI) on the GPU machine, which has no Maven:
#   here:   mvn -q -pl cuda -am install -DskipTests && scripts/device/run-gpu-tests.sh --pack
#   device: (carry .device) scripts/device/run-gpu-tests.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --pack ]; then
  ../shared/tools/device-jre >/dev/null
  mvn -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.13.4 -DoutputDirectory=.device
  rm -rf .device/classes && mkdir -p .device/classes/core
  cp -r cuda/target/classes cuda/target/test-classes .device/classes/
  cp -r core/target/classes .device/classes/core/
  echo "packed .device ($(du -sh .device | cut -f1)); carry it and run scripts/device/run-gpu-tests.sh there"
  exit 0
fi
for f in .device/*.tar.xz; do tar -xJf "$f" -C /tmp; done
export PATH=/tmp/jre/bin:$PATH
java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -jar .device/junit-platform-console-standalone-1.13.4.jar execute \
  --class-path .device/classes/classes:.device/classes/test-classes:.device/classes/core/classes \
  --select-package dev.tandem.cuda --details=tree --disable-ansi-colors
