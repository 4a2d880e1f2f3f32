"""Atari envs (names, scores, protocols) and the frame-deduplicated replay against hand-built stacks.

The replay is checked three ways: a fully hand-written 1-env sequence, a simulated envpool (shifted
stacks, life losses, game overs, truncations, pseudo-steps, ring wrap-around) against a plain-Python
reference, and a real envpool Breakout run whose rebuilt stacks must equal envpool's observations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperagent.atari import replay as atari_replay
from hyperagent.atari import env as atari

GAMMA = 0.9
add = jax.jit(atari_replay.add, donate_argnums=0)
add_reset = jax.jit(atari_replay.add_reset, donate_argnums=0)
gather = jax.jit(atari_replay.gather, static_argnames=('n_step', 'stack'))
sample = jax.jit(atari_replay.sample, static_argnames=('batch_size', 'n_step', 'stack'))
valid_mask = jax.jit(atari_replay.valid_mask)


# ----------------------------------------------------------------------------- names, scores, protocols

def test_canonical_game_any_case():
  for name in ('breakout', 'Breakout', 'BREAKOUT', 'Breakout-v5'):
    assert atari.canonical_game(name) == 'Breakout'
  assert atari.canonical_game('ms_pacman') == 'MsPacman'
  assert atari.canonical_game('montezumarevenge') == 'MontezumaRevenge'  # outside the 26, in envpool
  assert set(atari.GAMES) <= set(atari.all_games()) and len(atari.GAMES) == 26


def test_unknown_game_lists_valid_names():
  with pytest.raises(ValueError, match='Unknown Atari game.*Breakout.*Pong'):
    atari.canonical_game('Breakoutt')


def test_human_normalized():
  assert set(atari.GAMES) <= set(atari.HUMAN_RANDOM)
  assert atari.human_normalized('pong', -20.7) == pytest.approx(0.0)
  assert atari.human_normalized('Pong', 14.6) == pytest.approx(1.0)
  assert atari.human_normalized('breakout', 30.5 - 28.8 / 2) == pytest.approx(0.5)
  np.testing.assert_allclose(atari.human_normalized('Qbert', [163.9, 13455.0]), [0.0, 1.0])
  assert atari.human_normalized('Venture', 74.0) == pytest.approx(0.0623, abs=1e-4)  # SPEC §5.3 table
  with pytest.raises(ValueError, match='No human/random'):
    atari.human_normalized('Tennis', 0.0)


def test_protocol_config_read_back():
  common = dict(stack_num=4, frame_skip=4, img_height=84, img_width=84, gray_scale=True,
                max_episode_steps=27_000)
  expected = {
      ('paper', False): dict(common, repeat_action_probability=0.0, full_action_space=False, noop_max=30,
                             use_fire_reset=True, episodic_life=True, reward_clip=True),
      ('paper', True): dict(common, repeat_action_probability=0.0, full_action_space=False, noop_max=30,
                            use_fire_reset=True, episodic_life=False, reward_clip=False),
      ('machado', False): dict(common, repeat_action_probability=0.25, full_action_space=True, noop_max=1,
                               use_fire_reset=False, episodic_life=False, reward_clip=False),
  }
  for (protocol, evaluation), values in expected.items():
    env = atari.make_env('breakout', protocol, num_envs=2, seed=3, evaluation=evaluation, num_threads=1)
    config = env.config
    assert {k: config[k] for k in values} == values, (protocol, evaluation)
    assert config['task'] == 'breakout' and config['seed'] == 3 and config['num_envs'] == 2
    assert env.action_space.n == (18 if protocol == 'machado' else 4)
    env.close()
  with pytest.raises(ValueError, match='paper, machado'):
    atari.make_env('Pong', 'nature')


@pytest.mark.parametrize('field, value, low', [('eval_episodes', 0, 1), ('num_threads', -1, 0), ('eval_every', -5, 0),
                                               ('log_every', 0, 1), ('checkpoint_every', -1, 0), ('steps', 0, 1),
                                               ('eval_max_episode_steps', 0, 1), ('final_eval_envs', 0, 1)])
def test_run_settings_out_of_range_are_named(field, value, low):
  """Before, --eval-episodes 0 trained and then failed on an empty array, --num-threads -1 aborted in
  envpool's C++, and --final-eval-envs 0 ran to the end."""
  from hyperagent.atari.loop import RunConfig
  with pytest.raises(ValueError, match=f'^{field} must be >= {low}, got {value}.$'):
    RunConfig(**{field: value})


# ----------------------------------------------------------------------------- a hand-written sequence

def test_hand_written_sequence():
  """1 env, C = 8, frames equal to their step number, γ = 0.5, n = 3."""
  state = atari_replay.init(8, 1, index_dim=2, frame_shape=(2, 2))
  frame = lambda s: jnp.full((1, 2, 2), s, jnp.uint8)
  state = add_reset(state, frame(0))
  # step: (reward, terminated, truncated, first); 3 is a life loss, 4 the life's reset (envpool ignores
  # its action), 5 a truncation, 6 the game's reset (the pseudo-step).
  steps = {1: (1, 0, 0, 0), 2: (2, 0, 0, 0), 3: (3, 1, 0, 0), 4: (4, 0, 0, 0), 5: (5, 0, 1, 0),
           6: (9, 0, 0, 1), 7: (7, 0, 0, 0), 8: (8, 0, 0, 0), 9: (9, 0, 0, 0), 10: (10, 0, 0, 0)}

  def step(state, s):
    r, term, trunc, first = steps[s]
    return add(state, jnp.array([s % 4]), jnp.array([float(r)]), jnp.array([term]), jnp.array([trunc]),
               frame(s), jnp.full((1, 2), float(s)), jnp.array([first]))

  for s in range(1, 8):
    state = step(state, s)
  rows = jnp.arange(8)
  batch = gather(state, rows, jnp.zeros(8, jnp.int32), n_step=3, discount=0.5)
  np.testing.assert_array_equal(valid_mask(state)[:, 0], [0, 1, 1, 1, 0, 1, 0, 1])
  # row: (return, discount, obs frames, next_obs frames), by hand
  expected = {1: (1 + .5 * 2 + .25 * 3, 0.0, [0, 0, 0, 0], [0, 1, 2, 3]),
              2: (2 + .5 * 3, 0.0, [0, 0, 0, 1], [0, 1, 2, 3]),
              3: (3, 0.0, [0, 0, 1, 2], [0, 1, 2, 3]),
              5: (5, 0.5, [1, 2, 3, 4], [2, 3, 4, 5]),             # the stack crosses the life loss
              7: (7, 0.5, [6, 6, 6, 6], [6, 6, 6, 7])}             # the newest row ends the chain
  for row, (ret, disc, obs, next_obs) in expected.items():
    assert batch.reward[row] == pytest.approx(ret) and batch.discount[row] == pytest.approx(disc), row
    np.testing.assert_array_equal(batch.obs[row, :, 0, 0], obs)
    np.testing.assert_array_equal(batch.next_obs[row, :, 0, 0], next_obs)
    assert batch.action[row] == row % 4 and batch.perturbation[row, 0] == row
  # Three more steps wrap the ring over steps 0-2: steps 3-5 lose part of their stacks.
  for s in (8, 9, 10):
    state = step(state, s)
  np.testing.assert_array_equal(valid_mask(state)[:, 0], [1, 1, 1, 0, 0, 0, 0, 1])  # rows of steps 8, 9, 10, 7
  batch = gather(state, jnp.array([0, 1, 2, 7]), jnp.zeros(4, jnp.int32), n_step=3, discount=0.5)
  np.testing.assert_allclose(batch.reward, [8 + .5 * 9 + .25 * 10, 9 + .5 * 10, 10, 7 + .5 * 8 + .25 * 9])
  np.testing.assert_allclose(batch.discount, [.125, .25, .5, .125])
  np.testing.assert_array_equal(batch.obs[:, :, 0, 0], [[6, 6, 6, 7], [6, 6, 7, 8], [6, 7, 8, 9], [6, 6, 6, 6]])
  np.testing.assert_array_equal(batch.next_obs[:, :, 0, 0],
                                [[7, 8, 9, 10], [7, 8, 9, 10], [7, 8, 9, 10], [6, 7, 8, 9]])


# ----------------------------------------------------------------------------- reference checks

def run_reference(records, total, capacity):
  """Per stored (row, env): None if not sampleable, else the step number s it holds.

  A step's obs stack comes from `records['stack'][s - 1]`, the envpool-like shifted stack of source
  steps; it is sampleable when it is a transition and all its sources are still stored.
  """
  oldest = max(0, total - capacity)
  num_envs = records['first'].shape[1]
  steps = np.full((capacity, num_envs), -1)
  for s in range(oldest, total):
    for e in range(num_envs):
      # the step after a life loss resets the life (envpool ignores its action): no transition
      after_terminal = records['terminated'][s - 1, e]
      if not records['first'][s, e] and not after_terminal and min(records['stack'][s - 1][e]) >= oldest:
        steps[s % capacity, e] = s
  return steps


def reference_n_step(records, s, e, n, total):
  """(return, discount, last step) of the n-step chain from step s, in plain Python."""
  ret, m, disc = 0.0, 0, None
  for j in range(n):
    u = s + j
    if u >= total or (j > 0 and records['first'][u, e]):
      break
    ret += GAMMA ** j * records['reward'][u, e]
    m = j + 1
    if records['terminated'][u, e]:
      disc = 0.0
      break
    if records['truncated'][u, e]:
      break
  return ret, GAMMA ** m if disc is None else disc, s + m - 1


def check_all(state, records, frames, total, n_step):
  """Every (row, env): validity, n-step return, discount, z, action and rebuilt stacks vs the reference."""
  capacity, num_envs = state.first.shape
  steps = run_reference(records, total, capacity)
  np.testing.assert_array_equal(np.asarray(valid_mask(state)), steps >= 0)
  rows, envs = np.meshgrid(np.arange(capacity), np.arange(num_envs), indexing='ij')
  batch = jax.device_get(gather(state, jnp.asarray(rows.ravel()), jnp.asarray(envs.ravel()),
                                n_step=n_step, discount=GAMMA))
  for i, (row, e) in enumerate(zip(rows.ravel(), envs.ravel())):
    s = steps[row, e]
    if s < 0:
      continue
    ret, disc, last = reference_n_step(records, s, e, n_step, total)
    assert batch.reward[i] == pytest.approx(ret, abs=1e-5) and batch.discount[i] == pytest.approx(disc)
    assert batch.action[i] == records['action'][s, e]
    np.testing.assert_array_equal(batch.perturbation[i], records['z'][s, e])
    np.testing.assert_array_equal(batch.obs[i], frames(s - 1, e))
    np.testing.assert_array_equal(batch.next_obs[i], frames(last, e))
  return int((steps >= 0).sum())


def simulate(num_steps, num_envs, frame_shape, seed):
  """An envpool-like vector env with tiny frames: shifted stacks, life losses, game overs,
  truncations, and the pseudo-step after each real end. Frame pixels encode (step, env, episode)."""
  rng = np.random.default_rng(seed)
  shape = (num_steps, num_envs)
  rec = dict(first=np.zeros(shape, bool), reward=rng.integers(-1, 2, shape).astype(np.float32),
             terminated=np.zeros(shape, bool), truncated=np.zeros(shape, bool),
             action=rng.integers(0, 4, shape), z=rng.normal(size=shape + (3,)).astype(np.float32),
             frame=np.zeros(shape + frame_shape, np.uint8), stack=[])
  episode = np.arange(num_envs)
  reset_next = np.ones(num_envs, bool)
  stack = [None] * num_envs
  for s in range(num_steps):
    for e in range(num_envs):
      if reset_next[e]:
        rec['first'][s, e], reset_next[e] = True, False
        episode[e] += num_envs
        stack[e] = [s] * 4
      else:
        u = rng.random()
        rec['terminated'][s, e] = u < 0.15               # life losses and game overs
        rec['truncated'][s, e] = 0.15 <= u < 0.22
        reset_next[e] = u < 0.07 or rec['truncated'][s, e]
        stack[e] = stack[e][1:] + [s]
      rec['frame'][s, e] = rng.integers(0, 256, frame_shape)
      rec['frame'][s, e, 0, :3] = s % 256, e, episode[e]
    rec['stack'].append([list(x) for x in stack])
  return rec


def test_simulated_envpool_with_wraparound():
  num_envs, capacity, frame_shape = 3, 16, (3, 5)
  rec = simulate(70, num_envs, frame_shape, seed=0)
  frames = lambda s, e: rec['frame'][rec['stack'][s][e], e]
  state = atari_replay.init(capacity, num_envs, index_dim=3, frame_shape=frame_shape)
  state = add_reset(state, jnp.asarray(rec['frame'][0]))
  checked = 0
  for s in range(1, 70):
    state = add(state, rec['action'][s], rec['reward'][s], rec['terminated'][s], rec['truncated'][s],
                rec['frame'][s], rec['z'][s], rec['first'][s])
    if s + 1 in (2, 9, 16, 17, 20, 33, 51, 70):
      for n_step in (1, 3):
        checked += check_all(state, rec, frames, s + 1, n_step)
  assert checked > 300
  assert rec['first'][1:].sum() > 10 and (rec['terminated'] & ~rec['first']).sum() > 10

  # Sampling: uniform over the valid transitions, and no stack mixes two episodes.
  steps = run_reference(rec, 70, capacity)
  keys = jax.random.split(jax.random.key(0), 8)
  batches = [sample(state, k, batch_size=1024, n_step=3, discount=GAMMA) for k in keys]
  obs = np.concatenate([np.asarray(b.obs) for b in batches])
  next_obs = np.concatenate([np.asarray(b.next_obs) for b in batches])
  episodes = np.concatenate([obs[:, :, 0, 2], next_obs[:, :, 0, 2]], axis=1)
  assert (episodes == episodes[:, :1]).all()
  # A transition's z is unique: it names the (row, env) drawn.
  z_to_slot = {rec['z'][s, e].tobytes(): (s % capacity, e) for s, e in np.argwhere(rec['z'][:, :, 0] != 0)
               if s >= 70 - capacity}
  counts = {tuple(x): 0 for x in np.argwhere(steps >= 0)}
  for z in np.concatenate([np.asarray(b.perturbation) for b in batches]):
    counts[z_to_slot[z.tobytes()]] += 1   # KeyError if an invalid transition was drawn
  values = np.array(list(counts.values()))
  expected = values.sum() / len(values)
  assert values.min() > 0.6 * expected and values.max() < 1.4 * expected


# ----------------------------------------------------------------------------- real envpool

def test_envpool_ignores_the_action_after_a_life_loss():
  """What `atari_replay.valid_mask` relies on: the step after a life loss (not a game over) resets the
  life whatever the action, pushes one frame and leaves elapsed_step as it was (not `is_first`).
  Played three times from one seed, with three actions at that step."""
  def play(pseudo_action):
    env = atari.make_env('Breakout', 'paper', num_envs=1, seed=1, num_threads=1)
    obs, info = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(500):
      obs, _, terminated, truncated, info = env.step(rng.integers(0, 4, 1))
      if terminated[0] and not atari.game_over(terminated, truncated, info)[0]:
        lost, elapsed = obs, int(info['elapsed_step'][0])
        obs, reward, terminated, truncated, info = env.step(np.array([pseudo_action]))
        later = env.step(np.zeros(1, np.int64))[0]
        env.close()
        assert not atari.is_first(info)[0] and int(info['elapsed_step'][0]) == elapsed
        assert reward[0] == 0 and not terminated[0] and not truncated[0]
        np.testing.assert_array_equal(obs[0, :3], lost[0, 1:])  # one new frame on the old stack
        return obs, later
    raise AssertionError('no life lost in 500 random steps')

  (obs, later), *others = [play(a) for a in (0, 2, 3)]
  for other_obs, other_later in others:
    np.testing.assert_array_equal(obs, other_obs)
    np.testing.assert_array_equal(later, other_later)


@pytest.mark.parametrize('game, seed, num_envs, num_steps, capacity, cap', [
    ('Breakout', 1, 2, 400, 128, 60),
    # RoadRunner kills during the no-ops of a life reset: here envpool starts 3 games inside life
    # resets (steps 70, 255, 298; no flag, elapsed_step not 0) and 1 game ends during the FIRE (292)
    ('RoadRunner', 2, 4, 320, 320, None),
])
def test_envpool_stacks_rebuilt_exactly(game, seed, num_envs, num_steps, capacity, cap):
  """Random play ('paper' protocol; Breakout with a 60-step cap so that truncations occur too: random
  play ends a game after about 120 steps; envpool's elapsed_step, which the cap counts, skips the FIRE
  steps after life losses): every sampleable transition's rebuilt obs / next_obs equals what envpool
  returned, and every game is counted once (`loop.track_episodes`)."""
  from hyperagent.atari import loop
  extra = {} if cap is None else dict(max_episode_steps=cap)
  env = atari.make_env(game, 'paper', num_envs=num_envs, seed=seed, num_threads=1, **extra)
  obs, info = env.reset()
  assert (obs == obs[:, -1:]).all()  # a reset observation is its first frame repeated
  start_lives = np.asarray(info['lives']).copy()
  rng = np.random.default_rng(0)
  shape = (num_steps, num_envs)
  rec = dict(first=np.zeros(shape, bool), reward=np.zeros(shape, np.float32), terminated=np.zeros(shape, bool),
             truncated=np.zeros(shape, bool), action=rng.integers(0, env.action_space.n, shape),
             z=rng.normal(size=shape + (4,)).astype(np.float32), obs=np.zeros(shape + obs.shape[1:], np.uint8))
  rec['first'][0], rec['obs'][0] = True, obs
  state = add_reset(atari_replay.init(capacity, num_envs, index_dim=4), jnp.asarray(obs[:, -1]))
  carry = loop.reset_carry(info)
  zeros = jnp.zeros((num_envs,))
  stats = loop.EpisodeStats(zeros, zeros.astype(jnp.int32), jnp.zeros(()), jnp.zeros((), jnp.int32),
                            jnp.zeros((), jnp.int32))
  points = life_losses = unseen = resets = 0
  for s in range(1, num_steps):
    obs, reward, terminated, truncated, info = env.step(rec['action'][s])
    step, carry = loop.read_step(carry, rec['action'][s], obs, reward, terminated, truncated, info)
    first = np.asarray(step.first)
    rec['first'][s], rec['reward'][s], rec['obs'][s] = first, reward, obs
    rec['terminated'][s], rec['truncated'][s] = terminated, truncated
    assert (reward[first] == 0).all() and (obs[first] == obs[first][:, -1:]).all()
    hidden = first & (info['elapsed_step'] != 0)  # a game begun inside a life reset: full lives again
    assert (np.asarray(info['lives'])[hidden] == start_lives[hidden]).all()
    unseen += hidden.sum()
    resets += (info['elapsed_step'] == 0).sum()
    np.testing.assert_array_equal(np.sign(atari.raw_reward(info)), reward)  # the env clips, info keeps the score
    points += atari.raw_reward(info).sum()
    life_losses += (terminated & ~step.game_over).sum()
    stats = loop.track_episodes(stats, step)
    state = add(state, rec['action'][s], reward, terminated, truncated, obs[:, -1], rec['z'][s], first)
    if s + 1 in (100, 300, num_steps):
      rec['stack'] = [[list(_sources(rec['first'][:, e], p)) for e in range(num_envs)] for p in range(s + 1)]
      for n_step in (1, 5):
        assert check_all(state, rec, lambda p, e: rec['obs'][p, e], s + 1, n_step) > 0.8 * min(s, capacity)
  env.close()
  assert rec['first'][1:].sum() >= 2 and life_losses >= 4
  if cap:  # Breakout
    assert rec['truncated'].sum() >= 1 and points > 0
  else:  # RoadRunner: random play scores nothing
    assert unseen == 3
  # a game over is followed by a reset; a game ended unseen is closed at the next one's first frame
  pending = int((np.asarray(step.game_over)).sum())  # ended on the last step: its reset not played
  assert int(stats.count) == resets + pending + unseen


def _sources(first, p):
  """Steps whose frames make envpool's stack at step p: back to the episode's first step, repeated."""
  start = max(i for i in range(p + 1) if first[i])
  return [max(p - k, start) for k in (3, 2, 1, 0)]


def test_pseudo_transition_never_stored():
  """The step after a game over / truncation (envpool's auto-reset) is never sampled, in any form:
  not as a transition (its z never comes back) and not inside an n-step chain (its reward neither)."""
  rec = simulate(60, 2, (2, 3), seed=3)
  pseudo = rec['first'].copy()
  pseudo[0] = False
  assert pseudo.sum() >= 5
  rec['reward'][pseudo] = 1000.0  # would show up in any return that crossed it
  state = atari_replay.init(64, 2, index_dim=3, frame_shape=(2, 3))
  state = add_reset(state, jnp.asarray(rec['frame'][0]))
  for s in range(1, 60):
    state = add(state, rec['action'][s], rec['reward'][s], rec['terminated'][s], rec['truncated'][s],
                rec['frame'][s], rec['z'][s], rec['first'][s])
  assert not np.asarray(valid_mask(state))[np.argwhere(pseudo)[:, 0], np.argwhere(pseudo)[:, 1]].any()
  batch = sample(state, jax.random.key(1), batch_size=4096, n_step=5, discount=GAMMA)
  assert np.abs(np.asarray(batch.reward)).max() < 10
  pseudo_z = {rec['z'][s, e].tobytes() for s, e in np.argwhere(pseudo)}
  assert not pseudo_z & {z.tobytes() for z in np.asarray(batch.perturbation)}


def test_memory_within_raw_frame_bytes():
  """The whole buffer is within 1.2x (here 1.005x) of the raw bytes of the frames it stores."""
  for capacity, num_envs, index_dim in ((1000, 1, 4), (500, 8, 4), (250, 4, 10)):
    state = atari_replay.init(capacity, num_envs, index_dim)
    raw = capacity * num_envs * 84 * 84
    assert atari_replay.nbytes(state) <= 1.2 * raw, (capacity, num_envs, atari_replay.nbytes(state) / raw)


# ----------------------------------------------------------------------------- the loop

def test_due_updates_schedule():
  from hyperagent.atari.loop import due_updates
  from hyperagent.config import make_config
  warm10 = make_config('hyperagent', 'atari', warmup_steps=10)
  steps = np.arange(0, 20, dtype=np.int32)
  # paper: the first update at read_step == warm-up, then one per step
  np.testing.assert_array_equal(due_updates(steps, warm10, 1.0, xp=np), np.maximum(steps - 9, 0))
  quarter = due_updates(steps, warm10, 0.25, xp=np)
  np.testing.assert_array_equal(quarter, [0] * 10 + [1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
  np.testing.assert_array_equal(np.asarray(due_updates(jnp.asarray(steps), warm10, 0.25)), quarter)
  np.testing.assert_array_equal(due_updates(steps, warm10, 0.0, xp=np), 0)


TINY = (('cnn_feature_dim', 32), ('num_update_indices', 4), ('batch_size', 8), ('warmup_steps', 24),
        ('replay_capacity', 200))


def _tiny_run(**kw):
  from hyperagent.atari.loop import RunConfig
  base = dict(game='pong', steps=64, num_envs=2, replay_ratio=0.25, eval_every=32, eval_episodes=2,
              final_eval_episodes=2, final_eval_envs=2, eval_max_episode_steps=40, log_every=16,
              checkpoint_every=32, num_threads=1, overrides=TINY)
  return RunConfig(**dict(base, **kw))


def _read(path):
  import csv
  with open(path, newline='') as f:
    return [{k: v for k, v in row.items() if k != 'sps'} for row in csv.DictReader(f)]


def test_the_logs_survive_a_kill_while_a_resume_cuts_them(tmp_path, monkeypatch):
  """A resume cuts train.csv back to its checkpoint's step by replacing the file whole: killed before
  the rename, the log is as it was (it was rewritten in place, which a kill left empty or cut). A log
  left empty by a kill before its first row gets its header with that row."""
  import os
  from hyperagent.atari import runner
  path = tmp_path / 'train.csv'
  for steps in (16, 32, 48):
    runner._append_csv(str(path), dict(env_steps=steps, loss=0.5))
  runner._truncate_csvs(str(tmp_path), 32)
  assert [int(r['env_steps']) for r in _read(path)] == [16, 32]
  runner._append_csv(str(path), dict(env_steps=48, loss=0.5))
  before = path.read_text()

  def killed(*args):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, 'replace', killed)
  with pytest.raises(KeyboardInterrupt):
    runner._truncate_csvs(str(tmp_path), 16)
  assert path.read_text() == before
  empty = tmp_path / 'eval.csv'
  empty.write_text('')
  runner._append_csv(str(empty), dict(env_steps=0, score=1.0))
  assert _read(empty) == [dict(env_steps='0', score='1.0')]


@pytest.mark.optimized
def test_checkpoint_resume_reproduces_metrics(tmp_path):
  """Interrupted at the first checkpoint and resumed == uninterrupted: same CSV rows, same final score."""
  import json
  from hyperagent.atari.runner import Runner
  runner = Runner(_tiny_run())
  straight = runner.train(str(tmp_path / 'a'), progress=False)
  assert runner.train(str(tmp_path / 'b'), progress=False, stop_after=32) == dict(interrupted_at=32)
  assert max(int(r['env_steps']) for r in _read(tmp_path / 'b' / 'train.csv')) == 32
  saved = np.load(tmp_path / 'b' / 'checkpoint.npz')
  frames = [saved[k] for k in saved.files if k.startswith('replay/') and saved[k].ndim == 4]
  assert frames and frames[0].shape[0] == 17  # of 100 rows: the reset row and 16 steps of the 2 envs
  resumed = runner.train(str(tmp_path / 'b'), resume=True, progress=False)
  # ratio 0.25 from the 24-step warm-up on: floor(0.25 · (64 − 24)) + 1 updates, the first at step 24
  assert straight == resumed and straight['updates'] == (64 - 24) // 4 + 1 and straight['env_steps'] == 64
  # a finished run is loaded, not trained or evaluated again; a new run never writes over one
  again = runner.train(str(tmp_path / 'b'), resume=True, progress=False)
  assert again.pop('loaded_from').endswith('final.json') and again == resumed
  from hyperagent import checkpoint
  with pytest.raises(checkpoint.CheckpointError, match='holds a run .*--fresh'):
    runner.train(str(tmp_path / 'b'), progress=False)
  a, b = _read(tmp_path / 'a' / 'train.csv'), _read(tmp_path / 'b' / 'train.csv')
  assert len(a) == 4 and a == b and float(a[-1]['loss']) > 0
  assert _read(tmp_path / 'a' / 'eval.csv') == _read(tmp_path / 'b' / 'eval.csv')
  # a finished 32-step run, its end on the checkpoint grid, extended to 64: the straight run again
  assert Runner(_tiny_run(steps=32)).train(str(tmp_path / 'c'), progress=False)['env_steps'] == 32
  assert runner.train(str(tmp_path / 'c'), resume=True, progress=False) == straight
  assert _read(tmp_path / 'c' / 'train.csv') == a and _read(tmp_path / 'c' / 'eval.csv') == _read(tmp_path / 'a' / 'eval.csv')
  assert [int(r['env_steps']) for r in _read(tmp_path / 'a' / 'eval.csv')] == [0, 32, 64]
  final = json.loads((tmp_path / 'a' / 'final.json').read_text())
  assert final['game'] == 'Pong' and final['episodes'] == 2 and np.isfinite(final['hns'])


@pytest.mark.optimized
def test_runs_stopped_before_a_checkpoint_resume_and_an_ended_run_extends_only_on_its_grid(tmp_path):
  """48 steps, checkpoints every 32. Killed at step 20 (train.csv and eval.csv written, no checkpoint
  yet): the same command starts it again, and a folder of another run's is still refused. A Ctrl-C
  before the first step saves at step 0, and the resume does not evaluate step 0 twice. The run
  that ended at 48, off the grid, may not go on to 64 (a straight run would not cut its games at 48),
  nor be asked for fewer steps than it trained."""
  import json
  import os
  import shutil
  import signal
  from hyperagent import checkpoint
  from hyperagent.atari.runner import Runner
  runner = Runner(_tiny_run(steps=48))
  update, calls = runner.update, []

  def update_then_killed(*args):
    calls.append(1)
    if len(calls) == 10:  # step 20, after the log at 16
      raise RuntimeError('killed')
    return update(*args)

  runner.update = update_then_killed
  with pytest.raises(RuntimeError, match='killed'):
    runner.train(str(tmp_path / 'k'), resume=True, progress=False)
  runner.update = update
  assert sorted(os.listdir(tmp_path / 'k')) == ['config.json', 'eval.csv', 'train.csv']
  shutil.copytree(tmp_path / 'k', tmp_path / 'other')
  config = json.loads((tmp_path / 'other' / 'config.json').read_text())
  (tmp_path / 'other' / 'config.json').write_text(json.dumps(dict(config, run=dict(config['run'], seed=7))))
  with pytest.raises(checkpoint.CheckpointError, match='holds a run .*--fresh'):
    runner.train(str(tmp_path / 'other'), resume=True, progress=False)
  result = runner.train(str(tmp_path / 'k'), resume=True, progress=False)
  assert result['env_steps'] == 48
  assert [int(r['env_steps']) for r in _read(tmp_path / 'k' / 'eval.csv')] == [0, 32]
  assert [int(r['env_steps']) for r in _read(tmp_path / 'k' / 'train.csv')] == [16, 32, 48]
  with pytest.raises(checkpoint.CheckpointError, match='ended at step 48, which is not a multiple of --checkpoint-every'):
    Runner(_tiny_run(steps=64)).train(str(tmp_path / 'k'), resume=True, progress=False)
  with pytest.raises(checkpoint.CheckpointError, match='has trained 48 steps, more than --steps 32'):
    Runner(_tiny_run(steps=32)).train(str(tmp_path / 'k'), resume=True, progress=False)

  start = runner.start_segment
  def ctrl_c_then_start(*args):
    os.kill(os.getpid(), signal.SIGINT)
    return start(*args)

  runner.start_segment = ctrl_c_then_start
  with pytest.raises(checkpoint.Interrupted, match='interrupted at step 0 of 48'):
    runner.train(str(tmp_path / 'z'), resume=True, progress=False, stop_on_interrupt=True)
  runner.start_segment = start
  assert runner.train(str(tmp_path / 'z'), resume=True, progress=False)['env_steps'] == 48
  assert [int(r['env_steps']) for r in _read(tmp_path / 'z' / 'eval.csv')] == [0, 32]


@pytest.mark.optimized
def test_a_resume_without_the_replay_waits_for_it_to_refill(tmp_path, capsys):
  """--no-checkpoint-replay: the checkpoint holds no replay, and the resumed run, its replay empty,
  learns nothing until it holds warmup_steps (24) transitions again, as a fresh run does.
  Replay ratio 0.25 from step 24, 2 envs: 3 updates by step 32 (at 24, 28, 32); the resume at 32
  waits to step 56, then updates at 56, 60 and 64: 6 in all, where an uninterrupted run makes 11."""
  from hyperagent.atari.runner import Runner
  runner = Runner(_tiny_run(checkpoint_replay=False))
  assert runner.train(str(tmp_path), progress=False, stop_after=32) == dict(interrupted_at=32)
  saved = np.load(tmp_path / 'checkpoint.npz')
  assert not [k for k in saved.files if k.startswith('replay/')]
  resumed = runner.train(str(tmp_path), resume=True, progress=False)
  assert 'learning, not acting, waits 24 agent steps' in capsys.readouterr().out
  rows = {int(r['env_steps']): int(r['updates']) for r in _read(tmp_path / 'train.csv')}
  assert rows == {16: 0, 32: 3, 48: 3, 64: 6} and resumed['updates'] == 6 and resumed['skipped_updates'] == 5
  again = runner.train(str(tmp_path), resume=True, progress=False)  # finished: loaded, nothing skipped again
  assert again.pop('loaded_from').endswith('final.json') and again == resumed
  assert 'waits' not in capsys.readouterr().out


def test_the_final_test_plays_the_best_evaluations_parameters(tmp_path, monkeypatch):
  """SPEC §3: the final test uses the parameters of the best test mean, here the evaluation at step 32
  (scripted means 3, 9, 5 at steps 0, 32, 64), kept through the checkpoint of an interruption at 32."""
  from hyperagent.atari.runner import Runner
  seen = []

  def scripted(self, params, num_episodes, num_envs, seed, key):
    seen.append(jax.device_get(params))
    return np.full(num_episodes, {0: 3.0, 1: 9.0, 2: 5.0}.get(len(seen) - 1, 0.0))

  monkeypatch.setattr(Runner, 'evaluate', scripted)
  runner = Runner(_tiny_run())
  # evaluations at 0 and 32, then the checkpoint; the resumed run evaluates at 64, then the final test
  assert runner.train(str(tmp_path), progress=False, stop_after=32) == dict(interrupted_at=32)
  result = runner.train(str(tmp_path), resume=True, progress=False)
  assert result['params'] == 'best' and result['best_step'] == 32 and len(seen) == 4
  same = lambda a, b: jax.tree.all(jax.tree.map(np.array_equal, a, b))
  assert same(seen[3], seen[1]) and not same(seen[3], seen[2])


@pytest.mark.slow
def test_xla_env_mode_matches_host(tmp_path):
  """envpool's XLA step inside one jitted fori_loop gives the host loop's metrics (to float rounding)."""
  from hyperagent.atari.runner import Runner
  host = Runner(_tiny_run(checkpoint_every=0)).train(str(tmp_path / 'host'), progress=False)
  xla = Runner(_tiny_run(checkpoint_every=0, env_mode='xla', chunk=5)).train(str(tmp_path / 'xla'), progress=False)
  assert host['updates'] == xla['updates'] and host['raw_score'] == xla['raw_score']
  for row_h, row_x in zip(_read(tmp_path / 'host' / 'train.csv'), _read(tmp_path / 'xla' / 'train.csv')):
    for k in row_h:
      np.testing.assert_allclose(float(row_h[k]), float(row_x[k]), rtol=1e-4, err_msg=k)


@pytest.mark.slow  # the GPU runbook's first command (gpu_checks.sh): it must run there at the first try
@pytest.mark.parametrize('mode', ['host', 'xla'])
def test_the_atari_benchmark_runs_and_counts_its_updates(mode, capsys):
  import json

  import experiment_scripts
  bench = experiment_scripts.load('bench_atari')
  assert bench.main(['--game', 'Pong', '--ratios', '0.5', '--num-envs', '2', '--iters', '3', '--mode', mode]) == 0
  row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert row['steps'] == 6 and row['updates'] == 3 and row['mode'] == mode and row['steps_per_s'] > 0


def test_cli_unknown_game_lists_valid_names(capsys):
  import importlib.util, pathlib
  path = pathlib.Path(__file__).parent.parent / 'experiments' / 'atari.py'
  spec = importlib.util.spec_from_file_location('atari_cli', path)
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  with pytest.raises(SystemExit) as e:
    cli.main(['--game', 'Breakoutt'])
  assert e.value.code == 2
  assert 'Unknown Atari game' in capsys.readouterr().err


def test_cli_without_envpool_says_so_before_making_a_folder(tmp_path, monkeypatch, capsys):
  """Where envpool is not installed (macOS, ARM) the command stops at once with one line, not a
  traceback after it has made the run's folder (or an unknown-game error for a real game)."""
  import sys
  import experiment_scripts
  script = experiment_scripts.load('atari')
  monkeypatch.setitem(sys.modules, 'envpool', None)  # what `import envpool` meets where it is absent
  with pytest.raises(SystemExit) as e:
    script.main(['--game', 'Adventure', '--out', str(tmp_path / 'r')])
  err = capsys.readouterr().err
  assert e.value.code == 2 and 'envpool, which is not installed' in err and 'Traceback' not in err
  assert not (tmp_path / 'r').exists()


@pytest.mark.slow  # ~45 s of CPU Atari; the runner's checkpoint test covers the loop, this the Makefile wiring
def test_make_atari_end_to_end(tmp_path):
  """`make atari` with a few hundred steps and a tiny warm-up, then `make atari-report` on its output."""
  import json, os, pathlib, subprocess
  root = pathlib.Path(__file__).parent.parent
  tiny = ' '.join(f'--set {k}={v}' for k, v in TINY if k != 'warmup_steps')
  args = (f'--replay-ratio 0.1 --set warmup_steps=100 {tiny} --eval-every 150 --eval-episodes 2 '
          f'--final-eval-episodes 2 --final-eval-envs 2 --eval-max-episode-steps 60 --log-every 100 --num-envs 2 '
          f'--no-progress')
  out, report = tmp_path / 'results', tmp_path / 'report'
  env = dict(os.environ, PYTHONPATH=str(root / 'src'))
  subprocess.run(['make', '-s', '-C', str(root), 'atari', 'GAME=Breakout', 'STEPS=300', f'ATARI_OUT={out}',
                  f'ATARI_ARGS={args}'], check=True, env=env, capture_output=True, text=True)
  (folder,) = (out / 'Breakout').glob('hyperagent-paper-*')  # the suffix: a hash of the settings
  run_dir = folder / 'seed0'
  final = json.loads((run_dir / 'final.json').read_text())
  # ratio 0.1 from the 100-step warm-up on: floor(0.1 · (300 − 100)) + 1 updates
  assert final['env_steps'] == 300 and final['updates'] == (300 - 100) // 10 + 1 and final['episodes'] == 2
  assert len(_read(run_dir / 'train.csv')) == 3 and len(_read(run_dir / 'eval.csv')) == 3
  # the same command again: the finished run is loaded, not trained, evaluated or overwritten
  again = subprocess.run(['make', '-s', '-C', str(root), 'atari', 'GAME=Breakout', 'STEPS=300', f'ATARI_OUT={out}',
                          f'ATARI_ARGS={args}'], check=True, env=env, capture_output=True, text=True)
  assert 'finished already' in again.stderr and json.loads((run_dir / 'final.json').read_text()) == final
  subprocess.run(['make', '-s', '-C', str(root), 'atari-report', f'RESULTS={out}', f'ATARI_REPORT_DIR={report}'],
                 check=True, env=env, capture_output=True, text=True)
  text = (report / 'report.md').read_text()
  assert '| hyperagent-paper | Breakout | 1 |' in text and (report / 'curves.png').stat().st_size > 1000


# ----------------------------------------------------------------------------- the report

def test_iqm_and_stratified_bootstrap():
  from hyperagent.atari import report as atari_report
  assert atari_report.iqm(np.arange(8.0)) == pytest.approx(3.5)           # mean of 2, 3, 4, 5
  assert atari_report.iqm(np.array([0, 1, 2, 3, 100.0])) == pytest.approx(2.0)  # drops 1 per side
  same = [np.full(3, 0.5), np.full(5, 0.5)]
  assert atari_report.stratified_bootstrap_ci(same, reps=50) == pytest.approx((0.5, 0.5, 0.5))
  rng = np.random.default_rng(0)
  games = [rng.normal(mu, 0.2, 5) for mu in np.linspace(0, 2, 26)]
  point, low, high = atari_report.stratified_bootstrap_ci(games, reps=500)
  assert low < point < high and high - low < 0.5
  # stratified: every resample keeps each game's number of runs, so with one run per game the CI is a point
  one = [np.array([g[0]]) for g in games]
  p1, l1, h1 = atari_report.stratified_bootstrap_ci(one, reps=50)
  assert l1 == h1 == p1


def test_score_table_gives_the_sample_std_over_seeds():
  from hyperagent.atari import report as atari_report
  runs = [dict(label='a', game='Pong', final=dict(raw_score=s)) for s in (-21.0, -19.0, -14.0)]
  runs.append(dict(label='a', game='Breakout', final=dict(raw_score=5.0)))
  rows = {r['game']: r for r in atari_report.score_table(runs)}
  assert rows['Pong']['raw_mean'] == pytest.approx(-18.0) and rows['Pong']['seeds'] == 3
  assert rows['Pong']['raw_std'] == pytest.approx(np.sqrt((9 + 1 + 16) / 2))  # ddof 1, by hand
  assert rows['Breakout']['raw_std'] == 0.0  # one seed: no spread to show


def test_report_iqm_of_final_scores_and_at_one_step_by_hand(tmp_path):
  """Two games, two seeds: Breakout's seed 1 has evaluated to 20,000 steps only, so the per-evaluation
  IQM is read at 20,000 by default. HNS by hand from SPEC's constants (random, human)."""
  import csv
  import json
  from hyperagent.atari import report as atari_report
  evals = {('Pong', 0): [-21, -15.0, -10], ('Pong', 1): [-21, -13.2, -6],
           ('Breakout', 0): [1, 16.1, 20], ('Breakout', 1): [2, 7.46]}
  finals = {('Pong', 0): -8.0, ('Pong', 1): -3.0, ('Breakout', 0): 25.0, ('Breakout', 1): 10.34}
  for (game, seed), returns in evals.items():
    folder = tmp_path / f'{game}-{seed}'
    folder.mkdir()
    (folder / 'config.json').write_text(json.dumps(dict(game=game, run=dict(agent='hyperagent', protocol='paper',
                                                                              seed=seed))))
    with open(folder / 'eval.csv', 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=['env_steps', 'eval_return'])
      writer.writeheader()
      writer.writerows(dict(env_steps=20_000 * i, eval_return=r) for i, r in enumerate(returns))
    if (game, seed) != ('Breakout', 1):
      (folder / 'final.json').write_text(json.dumps(dict(game=game, agent='hyperagent', protocol='paper', seed=seed,
                                                         raw_score=finals[game, seed], env_steps=40_000)))
  text = atari_report.write_report([str(tmp_path)], str(tmp_path / 'report'), reps=50)
  pong = lambda x: (x + 20.7) / (14.6 + 20.7)
  breakout = lambda x: (x - 1.7) / (30.5 - 1.7)
  at = sorted([pong(-15.0), pong(-13.2), breakout(16.1), breakout(7.46)])  # 0.16, 0.21, 0.5, 0.2
  final = sorted([pong(-8.0), pong(-3.0), breakout(25.0)])
  (row,) = [line for line in text.split('## Aggregate human-normalised score at step 20,000')[1].splitlines()
            if line.startswith('| hyperagent-paper')]
  assert row.startswith(f'| hyperagent-paper | 2 | 4 | {np.mean(at[1:3]):.3f} [')  # IQM: the middle two of four
  # median and mean over games of each game's mean (Agarwal et al.), not over the pooled runs (0.205 here)
  game_means = [np.mean([pong(-15.0), pong(-13.2)]), np.mean([breakout(16.1), breakout(7.46)])]
  assert f'{np.median(game_means):.3f} | {np.mean(game_means):.3f} |' in row
  (row,) = [line for line in text.split('## Aggregate human-normalised score at step')[0].splitlines()
            if line.startswith('| hyperagent-paper | 2 |')]
  assert row.startswith(f'| hyperagent-paper | 2 | 3 | {np.mean(final):.3f} [')  # 3 runs: int(0.75) cuts none
  game_means = [np.mean([pong(-8.0), pong(-3.0)]), breakout(25.0)]  # Pong's two runs weigh as Breakout's one
  assert row.endswith(f'| {np.median(game_means):.3f} | {np.mean(game_means):.3f} |')
  assert atari_report.write_report([str(tmp_path)], str(tmp_path / 'r2'), reps=50, step=40_000).count(
      '| hyperagent-paper | 2 | 3 |') == 2  # at 40,000: Breakout's seed 1 has no evaluation and is left out
  with pytest.raises(ValueError, match='no run evaluated at step 30,000; the steps evaluated are 0, 20,000, 40,000.'):
    atari_report.write_report([str(tmp_path)], str(tmp_path / 'r3'), reps=50, step=30_000)
  with pytest.raises(ValueError, match='reps must be >= 1, got 0.'):
    atari_report.write_report([str(tmp_path)], str(tmp_path / 'r3'), reps=0)
  # one label's runs under other settings, or one run twice, are not pooled
  other = tmp_path / 'Pong-2'
  other.mkdir()
  (other / 'config.json').write_text(json.dumps(dict(game='Pong', run=dict(agent='hyperagent', protocol='paper',
                                                                            seed=2, steps=10_000_000))))
  (other / 'eval.csv').write_text((tmp_path / 'Pong-0' / 'eval.csv').read_text())
  with pytest.raises(ValueError, match='are both hyperagent-paper but differ in run.steps'):
    atari_report.write_report([str(tmp_path)], str(tmp_path / 'r3'), reps=50)
  (other / 'config.json').write_text((tmp_path / 'Pong-0' / 'config.json').read_text())
  with pytest.raises(ValueError, match='are both hyperagent-paper on Pong, seed 0'):
    atari_report.write_report([str(tmp_path)], str(tmp_path / 'r3'), reps=50)


@pytest.mark.slow  # ~1 min on the CI machine; test_checkpoint_resume_reproduces_metrics covers resuming
@pytest.mark.parametrize('call, step', [(10, 20), (16, 32)])
def test_ctrl_c_saves_where_it_stops_and_the_run_resumes(tmp_path, call, step):
  """Two envs, one `update` call per iteration of 2 steps, logs every 16 steps, evaluations every 32.
  Ctrl-C during call 10 stops mid-chunk at step 20; during call 16, the chunk's last, it stops at 32
  after that step's log and evaluation, which a resumed run would otherwise never make."""
  import os
  import signal
  from hyperagent import checkpoint
  from hyperagent.atari.runner import Runner
  runner = Runner(_tiny_run(checkpoint_every=0))
  update, calls = runner.update, []

  def update_then_ctrl_c(*args):
    calls.append(1)
    if len(calls) == call:
      os.kill(os.getpid(), signal.SIGINT)
    return update(*args)

  runner.update = update_then_ctrl_c
  with pytest.raises(checkpoint.Interrupted, match=f'interrupted at step {step} of 64.*resumes'):
    runner.train(str(tmp_path), progress=False, stop_on_interrupt=True)
  assert checkpoint.load_meta(str(tmp_path / 'checkpoint.npz'))['host']['segment'] == 1
  evaluated = [int(row['env_steps']) for row in _read(tmp_path / 'eval.csv')]
  assert evaluated == [s for s in (0, 32) if s <= step]
  runner.update = update
  result = runner.train(str(tmp_path), resume=True, progress=False)
  assert result['env_steps'] == 64 and (tmp_path / 'final.json').exists()
  assert [int(row['env_steps']) for row in _read(tmp_path / 'eval.csv')] == [0, 32, 64]
  assert [int(row['env_steps']) for row in _read(tmp_path / 'train.csv')] == [16, 32, 48, 64]


@pytest.mark.slow
def test_ctrl_c_in_the_last_chunk_finishes_the_run_and_says_so(tmp_path, capsys):
  import os
  import signal
  from hyperagent.atari.runner import Runner
  runner = Runner(_tiny_run(checkpoint_every=0))
  update, calls = runner.update, []

  def update_then_ctrl_c(*args):
    calls.append(1)
    if len(calls) == 32:  # the last iteration: step 64 of 64
      os.kill(os.getpid(), signal.SIGINT)
    return update(*args)

  runner.update = update_then_ctrl_c
  result = runner.train(str(tmp_path), progress=False, stop_on_interrupt=True)
  assert result['env_steps'] == 64 and (tmp_path / 'final.json').exists()
  assert 'Ctrl-C in the last chunk: training is done' in capsys.readouterr().err


def test_cli_on_a_run_folder_another_process_holds_stops_at_once(tmp_path, capsys):
  """Two processes never train one run: the second exits 75 (EX_TEMPFAIL) before building anything."""
  import importlib.util, os, pathlib
  from hyperagent import checkpoint
  from hyperagent.atari.loop import RunConfig
  path = pathlib.Path(__file__).parent.parent / 'experiments' / 'atari.py'
  spec = importlib.util.spec_from_file_location('atari_cli', path)
  cli = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cli)
  held = cli.run_folder(str(tmp_path), RunConfig(game='Pong', steps=64))
  with checkpoint.folder_lock(held):
    assert cli.main(['--game', 'pong', '--steps', '64', '--out', str(tmp_path)]) == checkpoint.BUSY_EXIT
  assert f'{held} is in use by another run' in capsys.readouterr().err
  assert os.listdir(held) == [checkpoint.LOCK_FILE]
