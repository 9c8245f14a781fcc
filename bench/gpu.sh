#!/usr/bin/env bash
# The GPU run, as one prepared command on the device machine: its Python 3.12 has torch,
# numpy, pandas, pyarrow, click, pyyaml, safetensors and pytest, not pydantic or Ray. Ray's
# wheel (79 MB) is over what may travel (64 MiB), so the Ray test skips there and the
# throughput is one task's, through lstm_worker directly.
#
# Here, once, in the repository's root (the wheels are never committed):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
#     typing-inspection==0.4.5 typing_extensions==4.16.0
# Then the device tool's run: command "bash bench/gpu.sh", carry [".whl"], timeout_s 540.
# Every log lands in $OUT: nvidia-smi, the CUDA tests, bench/gpu.py's lines and JSON.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
python3 -m pytest tests/test_cuda.py -q -rs -W default -p no:cacheprovider 2>&1 \
  | tee "$out/cuda-tests.log"
timeout 420 python3 bench/gpu.py --threads 16 --json "$out/gpu.json" 2>&1 | tee "$out/gpu.log"
