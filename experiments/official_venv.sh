#!/bin/bash
# A Python environment that runs the official PyTorch HyperAgent code (szrlee/HyperAgent) on a CPU, for
# experiments/bench_official.py. The official requirements pin torch 1.8.1+cu101 and Python 3.6-era wheels,
# which do not install on today's Python; this installs the current CPU torch and the gym 0.19 API the code
# is written against. gym 0.19's setup.py has a requirement string ("opencv-python>=3.") that current pip
# rejects, so its source is fetched and that one string mended before installing; nothing of the official
# code is copied or changed.
#   experiments/official_venv.sh /tmp/official-venv
set -euo pipefail
VENV=${1:?usage: official_venv.sh VENV_DIR}
PYTHON=${PYTHON:-python3}
$PYTHON -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# The CPU build of torch (the default PyPI wheel is the CUDA one, gigabytes of it); TORCH_INDEX names another index.
"$VENV/bin/pip" install -q --retries 0 --timeout 10 torch --index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
"$VENV/bin/pip" install -q "numpy<2" numba h5py tensorboard tqdm cloudpickle opencv-python-headless "setuptools<66" wheel
SRC=$(mktemp -d)
curl -sfL -o "$SRC/gym-0.19.0.tar.gz" \
    "$(curl -sf https://pypi.org/simple/gym/ | grep -o 'https://[^"#]*gym-0.19.0.tar.gz' | head -1)"
tar -xzf "$SRC/gym-0.19.0.tar.gz" -C "$SRC"
sed -i 's/opencv-python>=3\./opencv-python>=3.0/' "$SRC/gym-0.19.0/setup.py"
"$VENV/bin/pip" install -q --no-build-isolation --no-deps "$SRC/gym-0.19.0"
rm -rf "$SRC"
"$VENV/bin/python" -c "import torch, gym; print('official venv ready: torch', torch.__version__, 'gym', gym.__version__)"
