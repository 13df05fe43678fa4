#!/usr/bin/env bash
# Every GPU table of benchmarks/results in one call, on a CUDA machine whose python3 already has
# torch, torchvision and triton (no network needed): installs negev and the image plugin without
# dependencies, runs the CUDA tests of the core ops (their Triton kernels included), then writes
# pooling_cuda.md, ap_loss_cuda.md and throughput_cuda.md. With OUT set, each table and the test
# log are copied there as soon as they exist. A failing test is reported and the tables still run.
# The kernels' runs under Triton's interpreter (CPU) are left to CI.
# TABLES="ap_loss pooling" (a subset of ap_loss pooling throughput) writes only those.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
save() { if [ -n "${OUT:-}" ]; then cp "$@" "$OUT"/; fi; }
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . -e plugins/image || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
    tests/test_ap_triton.py tests/test_ap_svm_loss.py tests/test_wildcat_pool.py \
    tests/test_wildcat_triton.py tests/test_wildcat_dispatch.py tests/test_no_sync.py \
    tests/test_lse_pool.py tests/test_head.py -k "not interpreted_kernels" 2>&1 \
    | tail -40 > /tmp/gpu_tests.log
echo "tests: exit ${PIPESTATUS[0]}"; tail -5 /tmp/gpu_tests.log; save /tmp/gpu_tests.log
for table in ${TABLES:-ap_loss pooling throughput}; do
    python3 -m "benchmarks.$table" --device cuda && save "benchmarks/results/${table}_cuda.md"
done
