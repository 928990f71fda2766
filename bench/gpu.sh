#!/usr/bin/env bash
# The GPU check (bench/gpu.ts) on a GPU machine that can download nothing: it sets up what
# bench/gpu-carry.ts put in .gpu-carry/ (Node, node_modules, the Vulkan loader, the CUDA provider
# if it was carried), then runs bench/gpu.ts with the arguments given, under a timeout, with the
# log in $OUT/gpu.log when $OUT is set (the device tool brings $OUT back). See README, "The GPU script".
#
#   bash bench/gpu.sh                       # full size, 1024x1024, CUDA else WebGPU
#   bash bench/gpu.sh --steps 8 --error-latent 32
#   bash bench/gpu.sh --cpu --latent 16     # every stage on the CPU (what was checked without a GPU)
#   bash bench/gpu.sh --tiny --cpu          # the same with a tiny model, in about a minute
#
# GPU_CHECK_TIMEOUT (default 570 s) stops it inside the device tool's 600 s per command.
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
say() { echo "gpu.sh: $*"; }
unxz_to() { # FILE.xz DEST: xz where there is one, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

# Node >= 20.19: the machine's own, else the carried one.
node_ok() { "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; }
NODE=$(command -v node || true)
if [ -z "$NODE" ] || ! node_ok "$NODE"; then
  if [ ! -f "$CARRY/node.xz" ]; then
    say "no Node >= 20.19 here ($(${NODE:-false} --version 2>/dev/null || echo none)) and no $CARRY/node.xz: run 'npx tsx bench/gpu-carry.ts' before the call and carry .gpu-carry"
    exit 2
  fi
  mkdir -p /tmp/supir-node/bin && unxz_to "$CARRY/node.xz" /tmp/supir-node/bin/node && chmod +x /tmp/supir-node/bin/node
  NODE=/tmp/supir-node/bin/node
  node_ok "$NODE" || { say "the carried Node does not run here: $($NODE --version 2>&1 | head -1)"; exit 2; }
fi
export PATH="$(dirname "$NODE"):$PATH"
say "node $($NODE --version) at $NODE"

# node_modules: the checkout's, else the carried subset.
if [ ! -f node_modules/onnxruntime-node/package.json ] || [ ! -f node_modules/tsx/package.json ]; then
  if [ ! -f "$CARRY/node_modules.tar.xz" ]; then
    say "no node_modules and no $CARRY/node_modules.tar.xz: run 'npx tsx bench/gpu-carry.ts' before the call and carry .gpu-carry"
    exit 2
  fi
  unxz_to "$CARRY/node_modules.tar.xz" /tmp/supir-node-modules.tar && tar -xf /tmp/supir-node-modules.tar && rm -f /tmp/supir-node-modules.tar
  say "node_modules unpacked ($(wc -l <"$CARRY/packages.txt") packages)"
fi

# The Vulkan loader, for onnxruntime's WebGPU provider (Dawn on Vulkan), and the NVIDIA ICD.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if ls "$CARRY"/gl/*.deb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    for f in "$CARRY"/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    say "Vulkan loader installed from $CARRY/gl"
  else
    say "no libvulkan.so.1 here (and none carried, or not root): WebGPU will be unavailable"
  fi
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
done
for vendor in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  if [ -f "$vendor" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES="$vendor"; break; fi
done

# onnxruntime-node's CUDA provider, if it was carried (bench/gpu.ts says why CUDA is unavailable otherwise).
ORT_BIN=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
if ls "$CARRY"/ort-cuda/*.so >/dev/null 2>&1; then cp "$CARRY"/ort-cuda/*.so "$ORT_BIN"/ && say "CUDA provider libraries copied from $CARRY/ort-cuda"; fi

LOG="${OUT:-/tmp}/gpu.log"
timeout --signal=TERM --kill-after=10 "${GPU_CHECK_TIMEOUT:-570}" "$NODE" --import tsx bench/gpu.ts "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && say "stopped by the ${GPU_CHECK_TIMEOUT:-570} s timeout (GPU_CHECK_TIMEOUT); the stages it reached are in $LOG"
exit "$status"
