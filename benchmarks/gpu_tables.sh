#!/usr/bin/env bash
# Every GPU table of benchmarks/results in one call, on a CUDA machine whose python3 already has
# torch, torchvision and triton (no network needed): installs negev and the image plugin without
# dependencies, checks the GPU paths of the core ops, then writes pooling_cuda.md, ap_loss_cuda.md
# and throughput_cuda.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . -e plugins/image
python3 -m pytest -q -p no:cacheprovider tests/test_wildcat_pool.py tests/test_wildcat_triton.py \
    tests/test_wildcat_dispatch.py tests/test_ap_svm_loss.py
python3 -m benchmarks.pooling --device cuda
python3 -m benchmarks.ap_loss --device cuda
python3 -m benchmarks.throughput --device cuda
