#!/bin/bash
# Run HERE (pip must reach an index), once: gathers what the device machine's image lacks into .gpu/,
# which .gitignore lists and the device tool carries (`carry: [".gpu"]`). See BENCHMARKS.md, "GPU runbook".
#
# The image has Python 3.12 with jax (CUDA), chex, optax, numpy, pandas, matplotlib and tqdm; it lacks
# haiku, envpool, dm-env, gymnasium and bsuite, and gymnax (MinAtar) with what its import pulls in
# (flax, msgpack, pyyaml, rich, seaborn; not flax's orbax/tensorstore, which gymnax never imports).
# envpool's asset package is 140 MB, over the 64 MiB a call may carry, so only its Atari ROMs (0.6 MB)
# travel, as a minimal `envpool_assets` package.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/site
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
for pkg in dm-haiku==0.0.17 jmp==0.0.4 dm-env==1.6 dm-tree==0.1.10 envpool==1.2.5 optree==0.20.0 \
           gymnasium==1.4.0 farama-notifications==0.0.6 immutabledict==4.3.1 termcolor==3.3.0 \
           gymnax==1.0.1 flax==0.12.8 msgpack==1.2.4 pyyaml==6.0.4 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 \
           pygments==2.21.0 seaborn==0.13.2; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .gpu/wheels "$pkg"
done
python3 -m pip wheel -q --no-deps -w .gpu/wheels bsuite==0.3.6  # sdist only: pure Python, built here
assets=$(.venv/bin/python -c 'import envpool_assets, os; print(os.path.dirname(envpool_assets.__file__))')
mkdir -p .gpu/site/envpool_assets && cp "$assets/__init__.py" .gpu/site/envpool_assets/
cp -r "$assets/atari" .gpu/site/envpool_assets/
du -sh .gpu
