#!/usr/bin/env bash
# One device-tool call: the reproduction cells that still lack a row, for about MINUTES minutes.
#
# The device machine has python3 with torch, timm, torchmetrics, safetensors, typer, matplotlib and
# tqdm, but no internet and no ../shared. Before the call, in the repo root here:
#     mkdir -p .gpu-data && cp -r ../shared/data/MNIST ../shared/data/FashionMNIST .gpu-data/
#     grep -qx /.gpu-data/ .git/info/exclude || echo /.gpu-data/ >> .git/info/exclude
# The call (device tool): command "bash benchmarks/gpu_session.sh 8", carry [".gpu-data"], timeout 600.
# After it, merge what came back:
#     .venv/bin/python benchmarks/reproduce.py merge FILES_AT/results.jsonl --out docs/results
#
# docs/results/results.jsonl travels with the working tree, so finished cells are not run again.
set -euo pipefail
minutes=${1:-8}
grid=${2:-paper-gpu}
out=${OUT:?the device tool sets OUT}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
fi
if [ -f docs/results/results.jsonl ]; then
    cp docs/results/results.jsonl "$out/results.jsonl"
fi
"${PYTHON:-python3}" benchmarks/reproduce.py run --grid "$grid" --out "$out" --runs-dir /tmp/reproduce-runs \
    --data-dir .gpu-data --no-download --max-minutes "$minutes" --run-pictures none --no-figures \
    2>&1 | tr '\r' '\n' | grep -v 'run/s]$' | tee "$out/log.txt"
