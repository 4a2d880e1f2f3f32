"""The contract between a pure-JAX environment and the jitted loop (`jitloop.py`).

An environment is a `JaxEnv`: four pure functions of an env-state pytree, its settings and a key,
with bsuite's (dm_env's) episode semantics, plus the static facts the loop compiles against. Its
settings come in two parts:
- `JaxEnv.static`: hashable Python values that fix shapes or loop bounds (DeepSea's size, memory
  chain's number of bits). Two ids with equal `JaxEnv`s share one compiled loop;
- `params`: a pytree of arrays (a reward permutation, a noise scale, a height threshold). The params
  of several ids of one experiment stack along a leading axis and are vmapped with the seeds.

Episodes: `init` makes a fresh environment (its cross-episode counters at zero, no episode started);
`reset` starts an episode and keeps the counters; `step` never resets by itself (bsuite's auto-reset
is the loop's job: it calls `reset` after a step whose `last` is true). `discount` is 0 on a
termination and 1 otherwise, as bsuite's `dm_env.termination` / `transition` give; a last step with
discount 1 is a truncation (bootstrapped by the learner).

`info(params, state)` is the environment's `bsuite_info()` as of now, keys in bsuite's order
(`info_names`): the columns bsuite's CSV logger appends after its own five. The loop reads it at the
end of every episode.

Randomness: every draw bsuite makes when it builds an environment (DeepSea's mapping, the bandit's
arm permutation) is reproduced exactly on the host with numpy into `params`; every draw it makes
while playing (a reset position, reward noise) comes from the key the loop passes in.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax


class EnvStep(NamedTuple):
  observation: jax.Array
  reward: jax.Array    # float32 []
  discount: jax.Array  # float32 []: 0 on termination, 1 otherwise
  last: jax.Array      # bool []: the episode ended with this step


@dataclasses.dataclass(frozen=True)
class JaxEnv:
  """A pure-JAX environment. Equal (and hashed) by name, static settings and specs, not by the
  identity of its functions, so two `make` calls with the same static settings share a compile."""
  name: str
  static: tuple                        # hashable (name, value) pairs that fix shapes / loop bounds
  num_actions: int
  observation_shape: tuple[int, ...]   # of one observation as the agent gets it
  observation_dtype: Any               # float32 arrays, or int32 positions when one_hot_input
  info_names: tuple[str, ...]          # bsuite_info() keys, in bsuite's order
  # (params, key) -> state: a fresh environment, counters at zero, no episode started.
  init: Callable[[Any, jax.Array], Any] = dataclasses.field(compare=False, repr=False)
  # (params, state, key) -> (state, observation): a new episode; counters kept.
  reset: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]] = dataclasses.field(
      compare=False, repr=False)
  # (params, state, action, key) -> (state, EnvStep). Never resets by itself.
  step: Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, EnvStep]] = dataclasses.field(
      compare=False, repr=False)
  # (params, state) -> {name: array []} for name in info_names.
  info: Callable[[Any, Any], dict[str, jax.Array]] = dataclasses.field(compare=False, repr=False)
  # Observations are int32 [] positions of the single 1 in a one-hot array of observation_shape
  # (DeepSea; the size itself for all zeros): the network's first layer becomes a row lookup
  # (networks.OneHotLinear) and the replay stores ints.
  one_hot_input: bool = False
  # With one_hot_input, the positions that can be hot when only some can (DeepSea: column <= row),
  # increasing: the first layer holds and trains only their rows. None: any position can be.
  one_hot_cells: tuple[int, ...] | None = dataclasses.field(default=None, repr=False)
  # The longest an episode of these params can last (bsuite's are all bounded): sizes a replay that
  # never wraps. Not compared: ids that differ only in params (memory lengths) share a compile.
  max_episode_steps: int | None = dataclasses.field(default=None, compare=False)
