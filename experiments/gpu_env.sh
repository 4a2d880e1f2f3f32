# Source ON THE DEVICE MACHINE at the start of every call (`source experiments/gpu_env.sh`), with .gpu carried:
# installs the carried wheels into /tmp/site and puts them, the Atari ROMs and src/ on PYTHONPATH.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl \
  || return 1
export PYTHONPATH=/tmp/site:$PWD/.gpu/site:$PWD/src PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c 'import jax, haiku, envpool; print("jax", jax.__version__, jax.devices())'
