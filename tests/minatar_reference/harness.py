"""The comparison of one gymnax MinAtar game with the reference `minatar` package, transition by transition.

The two draw their randomness differently (numpy's RandomState against JAX keys), so no shared seed
makes their trajectories equal. Instead every step starts both from the same state: the reference's
game object is translated into gymnax's EnvState, the reference steps once, and gymnax steps from the
translated state under many keys. A step on which the reference draws nothing must give gymnax's
outcome under every key, equal to the reference's. On a step where it draws, the reference is sampled
as often again (copies of the game with fresh RandomStates) and the two samples must agree in law
(`assert_same_distribution`). An outcome is the next state (translated), the observation, the reward
and the end flag.

Each game module gives a `Game`: `to_gymnax` (reference game -> gymnax EnvState), `canonical` (a batch
of gymnax states as a dict of arrays -> the same with the parts that carry no meaning, such as an
empty slot's stale fields, zeroed; the reference's outcome is canonical(to_gymnax(next game))), and
optionally `scramble` and `known_difference`.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
from collections import Counter
from typing import Any, Callable, NamedTuple

import jax
import numpy as np


class Game(NamedTuple):
  name: str  # the reference's module under minatar.environments, and ours
  gymnax_name: str
  to_gymnax: Callable[[Any, int], Any]  # (reference game object, step count) -> gymnax EnvState
  canonical: Callable[[dict], dict]  # {field: array with a leading batch axis} -> the same, canonical
  # Puts a freshly reset reference game into a random mid-game state (rng: numpy RandomState), so that
  # the comparison reaches states a random policy rarely sees (late difficulty, crowded rows).
  scramble: Callable[[Any, Any], None] | None = None
  # (reference game before the step, full action) -> whether this step is one where gymnax is known to
  # differ from the reference; such steps are counted, not compared, and a test of their own pins the
  # difference down.
  known_difference: Callable[[Any, int], bool] | None = None
  # {entity field: its count field}: `outcome` keeps only the used rows of these fixed-size buffers
  counts: dict[str, str] = {}


# ---- the comparison --------------------------------------------------------------------------------

def state_fields(state, batched: bool) -> dict:
  fields = {f.name: np.asarray(getattr(state, f.name)) for f in dataclasses.fields(state)}
  return fields if batched else {name: value[None] for name, value in fields.items()}


def _rows(spec: Game, fields: dict, observation, reward, done) -> tuple[np.ndarray, list]:
  """Outcomes as rows of one int64 matrix (one row per sample) and the layout to read a row back."""
  fields = spec.canonical(fields)
  parts = [(name, np.asarray(fields[name])) for name in sorted(fields)]
  parts += [('observation', np.asarray(observation).astype(bool)), ('reward', np.asarray(reward)),
            ('done', np.asarray(done))]
  n = len(parts[0][1])
  layout = [(name, value.shape[1:]) for name, value in parts]
  # Rewards are whole numbers in MinAtar; x1000 keeps any fraction distinct anyway.
  matrix = np.concatenate([np.round(value.reshape(n, -1).astype(np.float64) * (1000 if name == 'reward' else 1))
                           .astype(np.int64) for name, value in parts], axis=1)
  return matrix, layout


def _reference_row(spec: Game, game_object, time: int, reward, done) -> tuple[np.ndarray, list]:
  """The reference game object's state (as gymnax's, at gymnax's step count `time`) as one outcome row."""
  return _rows(spec, state_fields(spec.to_gymnax(game_object, time), False), game_object.state()[None],
               [reward], [done])


def describe(row: np.ndarray, layout: list) -> str:
  """One outcome row back in words (the observation summarised)."""
  out, i = [], 0
  for name, shape in layout:
    size = int(np.prod(shape, dtype=int))
    value = row[i:i + size]
    i += size
    if name == 'observation':
      out.append(f'observation: {int(value.sum())} cells set')
    else:
      out.append(f'{name}={value.reshape(shape).tolist() if shape else int(value[0])}')
  return ', '.join(out)


def _counts(matrix: np.ndarray) -> Counter:
  return Counter(row.tobytes() for row in matrix)


class Report(NamedTuple):
  steps: int
  random_steps: int  # steps on which the reference drew random numbers
  episodes: int
  known_differences: int  # steps skipped as known differences (Game.known_difference)


def compare(spec: Game, seed: int, steps: int, samples: int = 1000, max_episode_steps: int = 200,
            scramble: bool = False) -> Report:
  """Walk `steps` reference transitions under uniformly random (minimal-set) actions; raise on a mismatch.

  scramble: start every episode from the game's random mid-game state instead of its reset state.
  """
  import gymnax
  game = spec.name
  env, params = gymnax.make(spec.gymnax_name)
  module = importlib.import_module(f'minatar.environments.{game}')
  step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
  rng = np.random.RandomState(seed)
  ref = module.Env(ramping=True)
  ref.random = np.random.RandomState(seed + 1)
  ref.reset()
  if scramble:
    spec.scramble(ref, rng)
  time, random_steps, episodes, known = 0, 0, 1, 0
  key = jax.random.PRNGKey(seed)
  for t in range(steps):
    action = int(rng.randint(env.num_actions))
    full_action = int(env.action_set[action])
    state = spec.to_gymnax(ref, time)
    before = ref.random.get_state()
    after_ref = copy.deepcopy(ref)
    reward, done = after_ref.act(full_action)
    drew = not _same_rng_state(before, after_ref.random.get_state())
    ref_row, layout = _reference_row(spec, after_ref, time + 1, reward, done)

    key, sub = jax.random.split(key)  # on every step, so that a skipped step leaves later draws as they are
    where = f'{game}, seed {seed}, step {t} (episode {episodes}, time {time}), action {action}'
    if spec.known_difference is not None and spec.known_difference(ref, full_action):
      known += 1
    else:
      obs, nxt, rew, term, _ = step(jax.random.split(sub, samples), state, action, params)
      gym_rows, _ = _rows(spec, state_fields(nxt, True), obs, rew, term)
      if not drew:
        _assert_equal_everywhere(where, ref_row, gym_rows, layout)
      else:
        random_steps += 1
        ref_rows = []
        for i in range(samples):
          other = copy.deepcopy(ref)
          other.random = np.random.RandomState(10_000 * seed + i)
          r, d = other.act(full_action)
          ref_rows.append(_reference_row(spec, other, time + 1, r, d)[0][0])
        assert_same_distribution(where, np.stack(ref_rows), gym_rows, layout)
    ref = after_ref
    time += 1
    if done or time >= max_episode_steps:
      ref.reset()
      if scramble:
        spec.scramble(ref, rng)
      time, episodes = 0, episodes + 1
  return Report(steps, random_steps, episodes, known)


def compare_reset(spec: Game, samples: int = 1000) -> int:
  """gymnax's reset against the reference's, in distribution (most resets draw nothing: one outcome).
  Returns the number of distinct reset outcomes."""
  import gymnax
  game = spec.name
  env, params = gymnax.make(spec.gymnax_name)
  module = importlib.import_module(f'minatar.environments.{game}')
  obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), samples), params)
  gym_rows, layout = _rows(spec, state_fields(state, True), obs, np.zeros(samples), np.zeros(samples, bool))
  ref_rows = []
  for i in range(samples):
    ref = module.Env(ramping=True)
    ref.random = np.random.RandomState(i)
    ref.reset()
    ref_rows.append(_reference_row(spec, ref, 0, 0.0, False)[0][0])
  ref_rows = np.stack(ref_rows)
  assert_same_distribution(f'{game}, reset', ref_rows, gym_rows, layout)
  return len(np.unique(ref_rows, axis=0))


# ---- single steps from hand-built states, for the tests that pin a difference down -------------------------

def _frozen(value):
  return tuple(map(_frozen, value)) if isinstance(value, list) else value


def outcome(spec: Game, fields: dict, observation, reward, done) -> tuple:
  """One outcome in readable, hashable form (`dict(...)` of it reads a field): the reward, the end flag,
  the canonical state fields by name (a buffer's used rows only, per `spec.counts`) and the observation's
  set cells. `fields`: a batch of one state, as `state_fields` gives it."""
  fields = spec.canonical(fields)
  out = [('reward', float(reward)), ('done', bool(done))]
  for name in sorted(fields):
    value = fields[name][0]
    if name in spec.counts:
      value = value[:int(fields[spec.counts[name]][0])]
    out.append((name, _frozen(np.asarray(value).tolist())))
  return tuple(out + [('observation', tuple(map(tuple, np.argwhere(np.asarray(observation) > 0).tolist())))])


def one_step(spec: Game, ref, full_action: int, time: int = 0, keys: int = 64) -> tuple[tuple, set]:
  """The reference's outcome of one step from its game object `ref` (left as it was), and the set of
  gymnax's outcomes from the translated state under `keys` keys (one element where gymnax draws nothing)."""
  import gymnax
  env, params = gymnax.make(spec.gymnax_name)
  action = int(np.flatnonzero(np.asarray(env.action_set) == full_action)[0])
  step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, None, None)))
  obs, nxt, rew, done, _ = step(jax.random.split(jax.random.PRNGKey(0), keys), spec.to_gymnax(ref, time), action,
                                params)
  batch = state_fields(nxt, True)
  gym = {outcome(spec, {f: v[i:i + 1] for f, v in batch.items()}, obs[i], rew[i], done[i]) for i in range(keys)}
  after = copy.deepcopy(ref)
  reward, ended = after.act(full_action)
  return outcome(spec, state_fields(spec.to_gymnax(after, time + 1), False), after.state(), reward, ended), gym


def _assert_equal_everywhere(where: str, ref_row: np.ndarray, gym_rows: np.ndarray, layout: list):
  """A step on which the reference draws nothing: gymnax's outcome under every key is the reference's."""
  if not (gym_rows == ref_row).all():
    show = lambda o: describe(np.frombuffer(o, np.int64), layout)
    raise AssertionError(f'{where}: the reference is deterministic here, gymnax is not equal to it.\n'
                         f'reference: {describe(ref_row[0], layout)}\n' +
                         '\n'.join(f'gymnax x{n}: {show(o)}' for o, n in _counts(gym_rows).most_common(3)))


def _same_rng_state(a, b) -> bool:
  return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


# An outcome seen c times on one side and never on the other: were the two laws equal, the c sightings
# would split between the sides like fair coins, so all c on one side has probability 2^(1-c).
SUPPORT_COUNT = 20
Z = 5.0  # frequencies: a two-sample binomial test at 5 standard errors (many are made, few false alarms)


def _differences(ref: Counter, gym: Counter, n: int) -> list[tuple[Any, int, int]]:
  """(outcome, reference count, gymnax count) where the two samples of n disagree beyond chance."""
  out = []
  for o in set(ref) | set(gym):
    a, b = ref[o], gym[o]
    if (a == 0 or b == 0) and a + b >= SUPPORT_COUNT:
      out.append((o, a, b))
    elif a + b >= SUPPORT_COUNT:
      p = (a + b) / (2 * n)
      if abs(a - b) / n > Z * np.sqrt(p * (1 - p) * 2 / n):
        out.append((o, a, b))
  return out


def assert_same_distribution(where: str, ref_rows: np.ndarray, gym_rows: np.ndarray, layout: list):
  """Two samples of outcome rows from the same law? Checked jointly (whole outcomes) and per element
  (each cell of each field on its own). The joint check says little where nearly every outcome is new
  (freeway's eight redrawn car speeds, seaquest's enemy and diver spawning together); the per-element
  check then still tests every part's law, though not how the parts go together."""
  n = len(ref_rows)
  joint = _differences(_counts(ref_rows), _counts(gym_rows), n)
  if joint:
    show = lambda o: describe(np.frombuffer(o, np.int64), layout)
    lines = [f'{where}: the outcome distributions differ.']
    lines += [f'reference x{a}, gymnax x{b}: {show(o)}' for o, a, b in joint[:3]]
    raise AssertionError('\n'.join(lines))
  names = [f'{name}{list(i) if shape else ""}' for name, shape in layout for i in np.ndindex(*shape)]
  varying = np.flatnonzero((ref_rows != ref_rows[:1]).any(0) | (gym_rows != ref_rows[:1]).any(0))
  for j in varying:
    per_element = _differences(Counter(ref_rows[:, j].tolist()), Counter(gym_rows[:, j].tolist()), n)
    if per_element:
      raise AssertionError(f'{where}: {names[j]} differs in law: ' +
                           ', '.join(f'value {v}: reference x{a}, gymnax x{b}' for v, a, b in per_element[:5]))
