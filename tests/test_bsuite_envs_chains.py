"""The pure-JAX Catch, DiscountingChain, MemoryChain and UmbrellaChain against bsuite's own.

Two kinds of check, as the ports split each play-time draw from the function that uses it:
- exact: the deterministic cores (`reset_with`, `step_with`, or a `step` that draws nothing) fed the
  very draws bsuite made, step for step over many episodes of random actions. The draws come from
  replaying bsuite's `RandomState(seed)` in bsuite's call order (which also pins that order down),
  or, for the ids bsuite seeds with None, from bsuite's internal attributes after it moved.
  Observations must be bit-equal; rewards equal to float32 precision (1.1 is not a float32);
  discounts, step types and bsuite_info() equal.
- in distribution: the key-based `reset` / `step` against bsuite's probabilities (all fair coins
  and uniform choices) with a chi-square test over a few thousand draws from fixed keys.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import bsuite
from bsuite.environments import catch as bsuite_catch
from bsuite.environments import discounting_chain as bsuite_discounting_chain
from bsuite.environments import memory_chain as bsuite_memory_chain
from bsuite.environments import umbrella_chain as bsuite_umbrella_chain

from bsuite_env_checks import assert_info, assert_specs, assert_step
from hyperagent.bsuite.envs import catch, discounting_chain, memory_chain, registry, umbrella_chain

KEY = jax.random.PRNGKey(0)  # for the functions that draw nothing: any key will do
NUM_DRAWS = 4000


def _check_observation(observation, bsuite_observation):
  observation = np.asarray(observation)
  assert observation.dtype == np.float32 == bsuite_observation.dtype
  np.testing.assert_array_equal(observation, bsuite_observation)


def _check_step(env_step, timestep):
  env_step = jax.device_get(env_step)  # one transfer, not one per field
  assert_step(env_step, timestep)
  _check_observation(env_step.observation, timestep.observation)


def _assert_uniform(values, num_values):
  """Chi-square test of `values` against the uniform law on range(num_values), bsuite's law for
  every draw here. A correct sampler gives a uniform p-value, so p > 1e-3 holds for all but 1 in
  1000 key choices (the keys are fixed, so the test is deterministic); a bias as small as 0.45/0.55
  on a coin gives p ~ 1e-10 over 4000 draws, and an off-by-one in a range gives an empty cell."""
  counts = np.bincount(np.asarray(values).ravel(), minlength=num_values)
  assert counts.shape == (num_values,), counts
  expected = counts.sum() / num_values
  statistic = ((counts - expected) ** 2 / expected).sum()
  p_value = special.gammaincc((num_values - 1) / 2, statistic / 2)  # chi2(num_values - 1)'s tail
  assert p_value > 1e-3, (counts, p_value)


def _bits_to_int(bits):
  """Rows of 0/1 bits -> ints, to test the joint law (and so independence) of several coins."""
  bits = np.asarray(bits).astype(np.int64)
  return (bits * (2 ** np.arange(bits.shape[-1]))).sum(-1)


def _keys(seed, n=NUM_DRAWS):
  return jax.random.split(jax.random.PRNGKey(seed), n)


def _draw_resets(env, params, keys):
  """One fresh environment reset per key, all of one id (params shared: in_axes None)."""
  def fresh(key):
    return env.reset(params, env.init(params, key), key)
  return jax.device_get(jax.jit(jax.vmap(fresh))(keys))


# ---------------------------------------------------------------------------------------- Catch

@functools.lru_cache(maxsize=None)
def _catch_fns(rows, columns):
  shape = dict(rows=rows, columns=columns)
  return (jax.jit(functools.partial(catch.reset_with, **shape)),
          jax.jit(functools.partial(catch.step, **shape)))


def _play_catch(ref, env, params, ball_columns, actions):
  """Episodes of `actions` [episodes, rows - 1]; `ball_columns()` gives bsuite's draw of a reset."""
  reset_with, step = _catch_fns(*(value for _, value in env.static))
  state = env.init(params, KEY)
  for episode_actions in actions:
    timestep = ref.reset()
    state, observation = reset_with(params, state, np.int32(ball_columns()))
    _check_observation(observation, timestep.observation)
    for action in episode_actions:
      state, env_step = step(params, state, np.int32(action), KEY)
      timestep = ref.step(int(action))
      _check_step(env_step, timestep)
    assert timestep.last()
    assert_info(env, params, state, ref)
  return state


# bsuite's default board (catch's sweep), a larger one, a one-step episode on a one-column board.
@pytest.mark.parametrize('rows,columns,seed', [(10, 5, 0), (10, 5, 42), (12, 8, 2), (2, 1, 3)])
def test_catch_matches_bsuite(rows, columns, seed):
  ref = bsuite_catch.Catch(rows=rows, columns=columns, seed=seed)
  env, params = catch.make(rows=rows, columns=columns, seed=seed)
  assert env.static == (('rows', rows), ('columns', columns))
  replay = np.random.RandomState(seed)  # bsuite's generator: one randint(columns) per reset
  actions = np.random.RandomState(100 + seed).randint(3, size=(25, rows - 1))
  state = _play_catch(ref, env, params, lambda: replay.randint(columns), actions)
  assert (float(state.total_regret) > 0) == (columns > 1)  # random paddles miss, if they can
  assert_specs(env, ref)


def test_catch_catches():
  """Following the ball pays +1 (zero regret), which random actions rarely show."""
  ref = bsuite_catch.Catch(seed=5)
  env, params = catch.make(seed=5)
  replay = np.random.RandomState(5)
  state = env.init(params, KEY)
  reset_with, step = _catch_fns(10, 5)
  for _ in range(10):
    timestep = ref.reset()
    state, observation = reset_with(params, state, np.int32(replay.randint(5)))
    _check_observation(observation, timestep.observation)
    for _ in range(9):
      action = int(np.sign(int(state.ball_x) - int(state.paddle_x))) + 1
      state, env_step = step(params, state, np.int32(action), KEY)
      _check_step(env_step, ref.step(action))
    assert float(env_step.reward) == 1.0
  assert float(state.total_regret) == 0.0
  assert_info(env, params, state, ref)


def test_catch_ball_column_is_uniform():
  columns = 7
  env, params = catch.make(rows=4, columns=columns)
  _, observations = _draw_resets(env, params, _keys(5))
  top_row = np.asarray(observations[:, 0, :])
  assert (top_row.sum(-1) == 1).all()
  _assert_uniform(top_row.argmax(-1), columns)


# ----------------------------------------------------------------------------- DiscountingChain

def _play_discounting_chain(ref, env, params, actions):
  """Episodes of `actions` [episodes, 100]; nothing is drawn."""
  np.testing.assert_allclose(np.asarray(params.rewards), ref._rewards, rtol=1e-7)
  reset, step = jax.jit(env.reset), jax.jit(env.step)
  state = env.init(params, KEY)
  for episode_actions in actions:
    timestep = ref.reset()
    state, observation = reset(params, state, KEY)
    _check_observation(observation, timestep.observation)
    episode_return = 0.0
    for action in episode_actions:
      state, env_step = step(params, state, np.int32(action), KEY)
      timestep = ref.step(int(action))
      _check_step(env_step, timestep)
      episode_return += float(env_step.reward)
    assert timestep.last()
    np.testing.assert_allclose(episode_return, ref._rewards[episode_actions[0]], rtol=1e-6)
    assert_info(env, params, state, ref)


@pytest.mark.parametrize('mapping_seed', [0, 4, 7])  # bonus on chain 0, 4, 2
def test_discounting_chain_matches_bsuite(mapping_seed):
  ref = bsuite_discounting_chain.DiscountingChain(mapping_seed)
  env, params = discounting_chain.make(mapping_seed)
  num_chains, length = discounting_chain.NUM_ACTIONS, discounting_chain.EPISODE_LEN
  actions = np.random.RandomState(mapping_seed).randint(num_chains, size=(num_chains, length))
  actions[:, 0] = np.arange(num_chains)  # every chain: the first action picks it
  _play_discounting_chain(ref, env, params, actions)
  assert_specs(env, ref)


@pytest.mark.parametrize('global_seed', [0, 1, 2])
def test_discounting_chain_unseeded_draws_like_bsuite(global_seed):
  """Without a mapping_seed bsuite picks the bonus chain from numpy's global generator; so do we."""
  np.random.seed(global_seed)
  ref = bsuite_discounting_chain.DiscountingChain()
  np.random.seed(global_seed)
  _, params = discounting_chain.make()
  np.testing.assert_allclose(np.asarray(params.rewards), ref._rewards, rtol=1e-7)
  assert np.isclose(np.asarray(params.rewards), 1.1).sum() == 1


# ---------------------------------------------------------------------------------- MemoryChain

@functools.lru_cache(maxsize=None)
def _memory_chain_fns():
  return jax.jit(memory_chain.reset_with), jax.jit(memory_chain.step)


def _play_memory_chain(ref, env, params, draws, actions):
  """Episodes of `actions` [episodes, L + 1]; `draws()` gives bsuite's (context, query) per reset."""
  reset_with, step = _memory_chain_fns()
  state = env.init(params, KEY)
  for episode_actions in actions:
    timestep = ref.reset()
    context, query = draws()
    np.testing.assert_array_equal(context, ref._context)
    assert query == ref._query
    state, observation = reset_with(params, state, np.int32(context), np.int32(query))
    _check_observation(observation, timestep.observation)
    for action in episode_actions:
      state, env_step = step(params, state, np.int32(action), KEY)
      timestep = ref.step(int(action))
      _check_step(env_step, timestep)
    assert timestep.last()
    assert_info(env, params, state, ref)
  return state


def _memory_chain_replay(seed, num_bits):
  """bsuite's generator, replayed: the constructor's context and query, then one pair a reset."""
  rng = np.random.RandomState(seed)
  draw = lambda: (rng.binomial(1, 0.5, num_bits), rng.randint(num_bits))
  draw()
  return draw


# (5, 1, 0) is memory_len/4's setting and (2, 5, 0) memory_size/4's; the others go beyond the sweep
# (memory_size's num_bits stops at 40).
@pytest.mark.parametrize('memory_length,num_bits,seed', [
    (1, 1, 0), (5, 1, 0), (30, 1, 0), (2, 5, 0), (7, 5, 5), (12, 50, 3)])
def test_memory_chain_matches_bsuite(memory_length, num_bits, seed):
  ref = bsuite_memory_chain.MemoryChain(memory_length, num_bits, seed)
  env, params = memory_chain.make(memory_length, num_bits, seed)
  assert env.static == (('num_bits', num_bits),)
  episodes = 30 if memory_length < 10 else 8
  actions = np.random.RandomState(200 + seed).randint(2, size=(episodes, memory_length + 1))
  state = _play_memory_chain(ref, env, params, _memory_chain_replay(seed, num_bits), actions)
  assert float(state.total_perfect) > 0 and float(state.total_regret) > 0
  assert_specs(env, ref)


def test_memory_chain_draws_are_fair():
  """bsuite's context is num_bits fair coins and its query uniform over range(num_bits)."""
  num_bits = 3
  env, params = memory_chain.make(4, num_bits)
  states, observations = _draw_resets(env, params, _keys(1))
  context = np.asarray(states.context)
  np.testing.assert_array_equal(np.asarray(observations[:, 0, 2:]), 2 * context - 1)
  _assert_uniform(_bits_to_int(context), 2 ** num_bits)  # all 8 contexts equally likely
  _assert_uniform(states.query, num_bits)
  # The queried bit, the right answer, is a fair coin too.
  _assert_uniform(context[np.arange(len(context)), np.asarray(states.query)], 2)


def _bsuite_time_left(length):
  """The time feature of every observation bsuite's own MemoryChain shows in one episode."""
  ref = bsuite_memory_chain.MemoryChain(length, 1, 0)
  seen = [ref.reset().observation[0, 0]]
  while not (timestep := ref.step(0)).last():
    seen.append(timestep.observation[0, 0])
  return np.asarray(seen[1:], np.float32)  # the first step repeats the reset's observation: t = 0 .. L - 1


@pytest.mark.parametrize('length', [3, 100, 1000, memory_chain.MAX_LENGTH])
def test_time_left_is_bsuites_float_under_a_vmap_with_a_shared_length(length):
  """bsuite's observations at long chains, from ours with one length shared by a vmapped batch: the
  case where a division in XLA would be an ulp off for some t (at 100, 1000 and 2047 on CPU)."""
  env, params = memory_chain.make(length)
  state = env.init(params, KEY)
  observe = jax.jit(jax.vmap(lambda t: memory_chain._observation(params, state._replace(timestep=t))[0, 0]))
  np.testing.assert_array_equal(np.asarray(observe(jnp.arange(length, dtype=jnp.int32))), _bsuite_time_left(length))


@pytest.mark.parametrize('make', [memory_chain.make, umbrella_chain.make])
def test_lengths_beyond_exact_time_are_refused(make):
  for length in (0, memory_chain.MAX_LENGTH + 1):
    with pytest.raises(ValueError, match=rf'length must be in \[1, {memory_chain.MAX_LENGTH}\], got {length}'):
      make(length)
  make(memory_chain.MAX_LENGTH)


def test_catch_refuses_a_board_without_room_to_fall():
  for rows, columns in ((1, 5), (10, 0)):
    with pytest.raises(ValueError, match=f'Catch needs rows >= 2 and columns >= 1, got {rows} x {columns}'):
      catch.make(rows, columns)


# -------------------------------------------------------------------------------- UmbrellaChain

@functools.lru_cache(maxsize=None)
def _umbrella_chain_fns():
  return jax.jit(umbrella_chain.reset_with), jax.jit(umbrella_chain.step_with)


def _umbrella_chain_replay(seed, n_distractor):
  """bsuite's generator, replayed in its call order: the constructor's weather; at a reset the
  weather, the umbrella, the distractors; at a step the reward's coin (not on the last step), then
  the distractors. Returns (reset_draws(), step_draws(last))."""
  rng = np.random.RandomState(seed)
  coin = lambda: rng.binomial(1, 0.5)
  distractors = lambda: rng.binomial(1, 0.5, size=n_distractor)
  coin()
  reset_draws = lambda: (coin(), coin(), distractors())
  step_draws = lambda last: (0 if last else coin(), distractors())
  return reset_draws, step_draws


def _umbrella_chain_read(ref):
  """The draws bsuite made, read back from it (for the ids bsuite seeds with None): the weather
  and umbrella from its attributes, a mid-episode coin from its reward, distractors from its
  observation. Returns (reset_draws(timestep), step_draws(timestep))."""
  def reset_draws(timestep):
    return ref._need_umbrella, ref._has_umbrella, timestep.observation[0, 3:]

  def step_draws(timestep):
    return int(timestep.mid() and timestep.reward > 0), timestep.observation[0, 3:]

  return reset_draws, step_draws


def _play_umbrella_chain(ref, env, params, actions, replay=None):
  """Episodes of `actions` [episodes, chain_length] with bsuite's draws replayed (`replay`, from
  `_umbrella_chain_replay`) or, without one, read back from bsuite after each of its moves."""
  reset_with, step_with = _umbrella_chain_fns()
  chain_length = int(params.chain_length)
  read_reset, read_step = _umbrella_chain_read(ref)
  state = env.init(params, KEY)
  for episode_actions in actions:
    timestep = ref.reset()
    draws = replay[0]() if replay else read_reset(timestep)
    state, observation = reset_with(params, state, *map(np.int32, draws))
    _check_observation(observation, timestep.observation)
    for t, action in enumerate(episode_actions):
      timestep = ref.step(int(action))
      draws = replay[1](t + 1 == chain_length) if replay else read_step(timestep)
      state, env_step = step_with(params, state, np.int32(action), *map(np.int32, draws))
      _check_step(env_step, timestep)
    assert timestep.last()
    assert_info(env, params, state, ref)
  return state


# (5, 20, _) is umbrella_length/4's setting and (20, 6, 0) umbrella_distract/5's; the others go
# beyond the sweep (chain_length 150 > 100).
@pytest.mark.parametrize('chain_length,n_distractor,seed', [
    (1, 0, 0), (5, 20, 0), (20, 6, 0), (3, 0, 4), (13, 6, 7), (150, 0, 1)])
def test_umbrella_chain_matches_bsuite(chain_length, n_distractor, seed):
  ref = bsuite_umbrella_chain.UmbrellaChain(chain_length, n_distractor, seed)
  env, params = umbrella_chain.make(chain_length, n_distractor, seed)
  assert env.static == (('n_distractor', n_distractor),)
  episodes = 30 if chain_length < 10 else 4
  actions = np.random.RandomState(300 + seed).randint(2, size=(episodes, chain_length))
  replay = _umbrella_chain_replay(seed, n_distractor)
  state = _play_umbrella_chain(ref, env, params, actions, replay)
  assert float(state.total_regret) > 0
  assert_specs(env, ref)


def test_umbrella_chain_draws_are_fair():
  """bsuite's weather, initial umbrella, distractors and mid-episode rewards are all fair coins,
  independent of each other: their joint law is uniform."""
  n_distractor = 4
  env, params = umbrella_chain.make(5, n_distractor)
  states, observations = _draw_resets(env, params, _keys(2))
  observations = observations[:, 0]
  np.testing.assert_array_equal(observations[:, 0], np.asarray(states.need_umbrella))
  np.testing.assert_array_equal(observations[:, 1], np.asarray(states.has_umbrella))
  reset_bits = np.concatenate([observations[:, :2], observations[:, 3:]], -1)
  _assert_uniform(_bits_to_int(reset_bits), 2 ** (2 + n_distractor))
  actions = jnp.zeros(NUM_DRAWS, jnp.int32)
  # As the loop's test episodes call it: params shared over a batch of states.
  _, env_steps = jax.device_get(jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, 0)))(
      params, states, actions, _keys(3)))
  assert not np.asarray(env_steps.last).any()
  rewards = np.asarray(env_steps.reward)
  assert set(np.unique(rewards)) == {-1.0, 1.0}
  distractors = np.asarray(env_steps.observation[:, 0, 3:])
  step_bits = np.concatenate([rewards[:, None] > 0, distractors], -1)
  _assert_uniform(_bits_to_int(step_bits), 2 ** (1 + n_distractor))


# --------------------------------------------------------------------------- bsuite's sweep ids

@pytest.mark.parametrize('bsuite_id', ['catch/0', 'discounting_chain/3', 'memory_len/5',
                                       'memory_size/4', 'umbrella_length/5', 'umbrella_distract/5'])
def test_sweep_ids_match_bsuite(bsuite_id):
  """`registry.make_id`, as the engine builds an id, builds bsuite's `load_from_id` environment (its
  settings too: memory_size's chain length, umbrella_distract's) and plays like it."""
  ref = bsuite.load_from_id(bsuite_id)
  env, params = registry.make_id(bsuite_id)
  assert_specs(env, ref)
  assert env.observation_dtype == ref.observation_spec().dtype
  assert tuple(ref.bsuite_info()) == env.info_names
  actions = np.random.RandomState(7)
  if isinstance(ref, bsuite_catch.Catch):
    assert dict(env.static) == dict(rows=ref._rows, columns=ref._columns)
    _play_catch(ref, env, params, lambda: ref._ball_x, actions.randint(3, size=(5, ref._rows - 1)))
  elif isinstance(ref, bsuite_discounting_chain.DiscountingChain):
    _play_discounting_chain(ref, env, params, actions.randint(5, size=(2, ref._episode_len)))
  elif isinstance(ref, bsuite_memory_chain.MemoryChain):
    assert int(params.memory_length) == ref._memory_length
    assert dict(env.static) == dict(num_bits=ref._num_bits)
    # bsuite's memory loaders seed the chain with 0: its draws replayed, not read back from it
    _play_memory_chain(ref, env, params, _memory_chain_replay(0, ref._num_bits),
                       actions.randint(2, size=(5, ref._memory_length + 1)))
  else:
    assert int(params.chain_length) == ref._chain_length
    assert dict(env.static) == dict(n_distractor=ref._n_distractor)
    _play_umbrella_chain(ref, env, params, actions.randint(2, size=(3, ref._chain_length)))


# --------------------------------------------------------------------------------- jit and vmap

def _stack(params_list):
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params_list)


def _check_vmapped_matches_single(env, params_list, num_steps, episode_lengths):
  """The loop's use: one id's settings per row of stacked params, one key per row, all jitted.
  Each row must equal the unbatched env run on its own, and end after its own episode length."""
  n = len(params_list)
  stacked = _stack(params_list)
  keys = np.asarray(_keys(11, n))
  step_keys = np.asarray(_keys(12, num_steps * n)).reshape(num_steps, n, -1)
  actions = np.random.RandomState(12).randint(env.num_actions, size=(num_steps, n)).astype(np.int32)

  def fresh(params, key):
    return env.reset(params, env.init(params, key), key)

  fresh_one, step_one = jax.jit(fresh), jax.jit(env.step)
  states, observations = jax.jit(jax.vmap(fresh))(stacked, keys)
  singles = [fresh_one(params, key) for params, key in zip(params_list, keys)]
  for i, (_, observation) in enumerate(singles):
    np.testing.assert_array_equal(observations[i], observation)
  singles = [state for state, _ in singles]
  vstep = jax.jit(jax.vmap(env.step))
  first_last = [None] * n
  for t in range(num_steps):
    states, env_steps = vstep(stacked, states, actions[t], step_keys[t])
    batched = jax.device_get((states, env_steps))
    for i in range(n):
      singles[i], single_step = step_one(params_list[i], singles[i], actions[t, i], step_keys[t, i])
      jax.tree.map(lambda rows, one: np.testing.assert_array_equal(rows[i], one),
                   batched, jax.device_get((singles[i], single_step)))
      if first_last[i] is None and bool(single_step.last):
        first_last[i] = t + 1
  assert first_last == list(episode_lengths)
  info = jax.jit(jax.vmap(env.info))(stacked, states)
  assert tuple(info) == env.info_names
  for name in env.info_names:
    assert info[name].shape == (n,)


def test_vmap_catch():
  env, params = catch.make(6, 4)
  params_list = [catch.make(6, 4)[1] for _ in range(3)]  # Params() is empty: stacks to empty
  assert _stack(params_list) == params == catch.Params()
  _check_vmapped_matches_single(env, params_list, 5, [5, 5, 5])


def test_vmap_discounting_chain():
  made = [discounting_chain.make(seed) for seed in range(5)]
  assert len({env for env, _ in made}) == 1  # one compile for the experiment
  _check_vmapped_matches_single(made[0][0], [params for _, params in made], 100, [100] * 5)


def test_vmap_memory_len():
  lengths = [1, 4, 9]
  made = [memory_chain.make(length, 1, 0) for length in lengths]
  assert len({env for env, _ in made}) == 1
  _check_vmapped_matches_single(made[0][0], [params for _, params in made], 10,
                                [length + 1 for length in lengths])


def test_vmap_umbrella_length():
  lengths = [1, 3, 10]
  made = [umbrella_chain.make(length, 20) for length in lengths]
  assert len({env for env, _ in made}) == 1
  _check_vmapped_matches_single(made[0][0], [params for _, params in made], 10, lengths)


def test_static_settings_split_compiles():
  """Shapes are static: ids of memory_size / umbrella_distract need their own compile."""
  assert memory_chain.make(2, 1)[0] != memory_chain.make(2, 2)[0]
  assert umbrella_chain.make(20, 1)[0] != umbrella_chain.make(20, 2)[0]
  assert catch.make(10, 5)[0] != catch.make(10, 6)[0]
