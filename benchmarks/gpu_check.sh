#!/usr/bin/env bash
# GPU check of the ONNX Runtime backend on a machine with an NVIDIA GPU (run from the repository root).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: gpu_check_out
#
# 1. a venv (.venv-gpu, --system-site-packages: torch/transformers/optimum of the main environment) with
#    onnxruntime-gpu and onnxruntime-genai-cuda (never beside the CPU onnxruntime in one environment: the venv's
#    packages shadow the system's); offline machines: WHEELHOUSE=/path/to/wheels installs from there;
# 2. proves CUDA really runs (a session whose providers include CUDAExecutionProvider, else exit 2);
# 3. tiny-model equality tests on CUDA: optimum export + OnnxEngine, and the genai builder + GenaiEngine
#    (TTS_SIM_TEST_DEVICE=cuda), greedy tokens equal to transformers;
# 4. decode and prefill tables for both real models at batch 1-32 (benchmarks/gpu_profile.py), saved as a
#    profile the simulator reads (OUT_DIR/gpu_profile.json.gz: tts-sim ... --profile), with the simulator's
#    roofline prediction for that GPU beside the measurement (OUT_DIR/gpu_profile.md).
# Exit 2 with a one-line message when there is no GPU or CUDA does not run.
set -euo pipefail
OUT=${1:-gpu_check_out}
VENV=${VENV:-.venv-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
log() { echo "[gpu_check $(date -u +%H:%M:%S)] $*"; }
die() { echo "gpu_check: $*" >&2; exit 2; }

command -v nvidia-smi >/dev/null || die "no nvidia-smi: this machine has no NVIDIA GPU (or no driver)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt" \
  || die "nvidia-smi failed: no usable GPU"
uptime | tee "$OUT/uptime.txt"

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv --system-site-packages "$VENV"
fi
PIP_SRC=()
[ -n "${WHEELHOUSE:-}" ] && PIP_SRC=(--no-index --find-links "$WHEELHOUSE")
log "installing onnxruntime-gpu and onnxruntime-genai-cuda into $VENV"
"$VENV/bin/python" -m pip install -q "${PIP_SRC[@]}" "onnxruntime-gpu>=1.31" "onnxruntime-genai-cuda>=0.18" \
  || die "cannot install onnxruntime-gpu / onnxruntime-genai-cuda (offline? set WHEELHOUSE)"
export PYTHONPATH=$PWD

log "checking that CUDA really runs (onnxruntime-gpu falls back to the CPU silently)"
"$VENV/bin/python" - <<'EOF' || die "CUDA does not run under onnxruntime (see above)"
import sys
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "g",
                      [helper.make_tensor_value_info(n, TensorProto.FLOAT, [64, 64]) for n in "ab"],
                      [helper.make_tensor_value_info("c", TensorProto.FLOAT, [64, 64])])
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
session = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
print("onnxruntime", ort.__version__, "available:", ort.get_available_providers(), "session:", session.get_providers())
x = np.ones((64, 64), np.float32)
session.run(None, {"a": x, "b": x})
if "CUDAExecutionProvider" not in session.get_providers():
    sys.exit("session fell back to " + ", ".join(session.get_providers()))
import onnxruntime_genai as og
print("onnxruntime-genai", og.__version__, "cuda available:", og.is_cuda_available())
EOF

log "tiny-model equality tests on CUDA"
TTS_SIM_TEST_DEVICE=cuda "$VENV/bin/python" -m pytest -q -m "slow or not slow" tests/test_backend_genai.py \
  -k "greedy or batches" 2>&1 | tee "$OUT/tests_genai_cuda.txt"
TTS_SIM_TEST_DEVICE=cuda "$VENV/bin/python" -m pytest -q tests/test_backend_onnx.py -k "greedy or padded" 2>&1 \
  | tee "$OUT/tests_onnx_cuda.txt"

log "latency tables (batch 1-32) and roofline comparison"
"$VENV/bin/python" benchmarks/gpu_profile.py --device cuda --quantization "${QUANT:-fp32}" \
  --batch-sizes 1,2,4,8,16,32 --out "$OUT/gpu_profile" 2>&1 | tee "$OUT/gpu_profile.log"
uptime | tee -a "$OUT/uptime.txt"
log "done: $OUT/gpu_profile.md, $OUT/gpu_profile.json.gz"
