#!/usr/bin/env bash
# The GPU checks of issue 14 §5, for a GPU machine whose python3 already holds CUDA torch
# (numpy, scikit-learn, matplotlib too) but none of our other packages:
#   tests/test_devices.py   the NN, the background flow and dSVDD / DROCC / DDD on CPU and
#                           GPU agree within the stated tolerance (they skip without CUDA)
#   benchmarks/device_speed.py --devices cpu cuda --threads 2
#                           the published flow recipe and the NN epoch, CPU against GPU
# Of our dependencies these need only nflows, which has no wheel on PyPI:
#   bash deploy/gpu-check.sh --fetch   (here, where pip reaches PyPI) builds it into .whl/
#   bash deploy/gpu-check.sh           (there, with .whl carried) installs it and runs both
# Logs go to $OUT (the device tool's folder) or /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [[ "${1:-}" == "--fetch" ]]; then
    mkdir -p .whl
    "$PYTHON" -m pip wheel -q --no-deps nflows==0.14 -w .whl
    echo "gpu-check: wheels in .whl/: $(ls .whl | tr '\n' ' ')"
    exit 0
fi

ls .whl/*.whl >/dev/null 2>&1 || { echo "gpu-check: no wheels in .whl/ (run with --fetch first)" >&2; exit 2; }
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site .whl/*.whl
export PYTHONPATH="/tmp/gpu-check-site:$PWD" PYTHONUNBUFFERED=1
out=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
status=0
"$PYTHON" -m pytest -q -rs -p no:cacheprovider tests/test_devices.py 2>&1 | tee "$out/gpu-tests.log" || status=1
"$PYTHON" benchmarks/device_speed.py --devices cpu cuda --threads 2 2>&1 \
    | tee "$out/device-speed.log" || status=1
exit $status
