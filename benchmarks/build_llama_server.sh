#!/usr/bin/env bash
# Build (once) llama.cpp's llama-server from the llama-cpp-python sdist on PyPI; print the cached binary's path.
#   bash benchmarks/build_llama_server.sh [VERSION]     # default: benchmarks/llama_server.py's DEFAULT_VERSION
# Cache: ~/.cache/tts-sim/llama.cpp/<version>/bin/llama-server ($TTS_SIM_LLAMA_CPP_CACHE overrides the root).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/llama_server.py build ${1:+--version "$1"}
