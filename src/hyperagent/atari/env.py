"""envpool Atari environments under named protocols, and human-normalised scores (SPEC §5.2).

Two protocols:
- 'paper': the HyperAgent code's wrappers (Gym `NoFrameskip-v4` semantics): no sticky actions,
  no-op starts (envpool's `noop_max=30`: 1-30 no-ops, or on games with FIRE 0-29 no-ops and then
  FIRE, where the Gym wrappers do 1-30 no-ops and then FIRE), frame skip 4 with max-pooling, 84x84
  grey, stack 4, minimal action set, 27,000 agent steps (108k frames) per episode. Training envs add
  a life loss as a terminal (episodic life) and clip rewards to their sign; evaluation envs do neither.
- 'machado': Machado et al. (2018): sticky actions 0.25, full action set, no life-loss signal,
  no FIRE reset, a single no-op start (`noop_max=0` segfaults in envpool 1.2.5), no clipping in the
  env (clip in the learner if wanted), same 108k-frame cap. Training and evaluation envs are equal.

envpool facts the loop must respect (checked on envpool 1.2.5, see tests/test_atari.py):
- Observations are uint8 [num_envs, 4, 84, 84], oldest frame first; a reset observation is its first
  frame repeated 4 times.
- The `step` after a game over or a truncation performs the reset: its action is ignored and it
  returns reward 0 and the new episode's first observation, with `info['elapsed_step'] == 0`
  (`is_first`). That pseudo-transition must not be learned from (atari_replay stores it as an
  episode start).
- A life loss under episodic life sets `terminated`, and the next `step` resets the life: it ignores
  its action, plays envpool's no-ops and FIRE, returns reward 0 and pushes one new frame onto a stack
  that still holds frames from before the life loss; `elapsed_step` does not advance and is not 0
  (not `is_first`). atari_replay never samples that step as a transition. A game that ends during its
  no-ops is reset there without a flag (see `is_first`).
- `info['reward']` is the raw game reward; `info['terminated']` marks a real game over.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hyperagent import cli

# (random, human) scores per game, SPEC §5.2: the standard constants of dqn_zoo's
# `atari_data.py` and the rliable Atari-100k notebook (Agarwal et al. 2021), which agree on all 26
# games (ECOSYSTEM.md §4). Episodes capped at 108k frames with 1-30 no-op starts.
HUMAN_RANDOM: dict[str, tuple[float, float]] = {
    'Alien': (227.8, 7127.7),
    'Amidar': (5.8, 1719.5),
    'Assault': (222.4, 742.0),
    'Asterix': (210.0, 8503.3),
    'BankHeist': (14.2, 753.1),
    'BattleZone': (2360.0, 37187.5),
    'Boxing': (0.1, 12.1),
    'Breakout': (1.7, 30.5),
    'ChopperCommand': (811.0, 7387.8),
    'CrazyClimber': (10780.5, 35829.4),
    'DemonAttack': (152.1, 1971.0),
    'Freeway': (0.0, 29.6),
    'Frostbite': (65.2, 4334.7),
    'Gopher': (257.6, 2412.5),
    'Hero': (1027.0, 30826.4),
    'Jamesbond': (29.0, 302.8),
    'Kangaroo': (52.0, 3035.0),
    'Krull': (1598.0, 2665.5),
    'KungFuMaster': (258.5, 22736.3),
    'MsPacman': (307.3, 6951.6),
    'Pong': (-20.7, 14.6),
    'PrivateEye': (24.9, 69571.3),
    'Qbert': (163.9, 13455.0),
    'RoadRunner': (11.5, 7845.0),
    'Seaquest': (68.4, 42054.7),
    'UpNDown': (533.4, 11693.2),
    # The paper's 8 hard-exploration games (SPEC §5.2); the first four of them are Atari-100k games too.
    'Gravitar': (173.0, 3351.4),
    'Pitfall': (-229.4, 6463.7),
    'Solaris': (1236.3, 12326.7),
    'Venture': (0.0, 1187.5),
}

# The 26 Atari-100k games (SPEC §5.2: inferred to be the paper's "26 Atari games").
GAMES: tuple[str, ...] = (
    'Alien', 'Amidar', 'Assault', 'Asterix', 'BankHeist', 'BattleZone', 'Boxing', 'Breakout',
    'ChopperCommand', 'CrazyClimber', 'DemonAttack', 'Freeway', 'Frostbite', 'Gopher', 'Hero',
    'Jamesbond', 'Kangaroo', 'Krull', 'KungFuMaster', 'MsPacman', 'Pong', 'PrivateEye', 'Qbert',
    'RoadRunner', 'Seaquest', 'UpNDown')
HARD_GAMES: tuple[str, ...] = (
    'Alien', 'Freeway', 'Gravitar', 'Hero', 'Pitfall', 'Qbert', 'Solaris', 'Venture')

PROTOCOLS = ('paper', 'machado')
MAX_EPISODE_STEPS = 27_000  # agent steps = 108k frames at frame skip 4

_COMMON = dict(stack_num=4, frame_skip=4, img_height=84, img_width=84, gray_scale=True,
               use_inter_area_resize=True, max_episode_steps=MAX_EPISODE_STEPS,
               zero_discount_on_life_loss=False)


def all_games() -> tuple[str, ...]:
  """Every Atari game envpool registers as `<Game>-v5` (104 in envpool 1.2.5), or GAMES without envpool."""
  try:
    from envpool.registration import registry
  except ImportError:
    return tuple(sorted(set(GAMES) | set(HARD_GAMES)))
  return tuple(sorted(task[:-3] for task, spec in registry.specs.items()
                      if spec[0] == 'envpool.atari' and task.endswith('-v5')))


def _key(name: str) -> str:
  name = name.strip().lower()
  if name.endswith('-v5'):
    name = name[:-3]
  return name.replace('_', '').replace('-', '').replace(' ', '')


def canonical_game(name: str) -> str:
  """envpool's spelling of a game name given in any case ('breakout', 'BREAKOUT', 'ms_pacman', 'Pong-v5')."""
  games = all_games()
  by_key = {_key(game): game for game in games}
  try:
    return by_key[_key(name)]
  except KeyError:
    raise ValueError(f'Unknown Atari game {name!r}; valid names: {", ".join(games)}.') from None


def human_normalized(game: str, score):
  """HNS = (score − random) / (human − random), for the games of HUMAN_RANDOM; works on arrays."""
  game = canonical_game(game)
  if game not in HUMAN_RANDOM:
    raise ValueError(f'No human/random constants for {game!r}; known games: {", ".join(sorted(HUMAN_RANDOM))}.')
  random, human = HUMAN_RANDOM[game]
  return (np.asarray(score, dtype=np.float64) - random) / (human - random)


def protocol_kwargs(protocol: str, evaluation: bool = False) -> dict[str, Any]:
  """The envpool options of a protocol, for training or evaluation envs (see the module docstring)."""
  if protocol == 'paper':
    return dict(_COMMON, repeat_action_probability=0.0, full_action_space=False, noop_max=30,
                use_fire_reset=True, episodic_life=not evaluation, reward_clip=not evaluation)
  if protocol == 'machado':
    return dict(_COMMON, repeat_action_probability=0.25, full_action_space=True, noop_max=1,
                use_fire_reset=False, episodic_life=False, reward_clip=False)
  cli.check_choice('Atari protocol', protocol, PROTOCOLS)


def make_env(game: str, protocol: str = 'paper', num_envs: int = 1, seed: int = 0,
             evaluation: bool = False, num_threads: int = 0, **overrides: Any):
  """An envpool gymnasium vector env of `num_envs` copies of `game` under `protocol`.

  Env i is seeded by envpool from `seed`. `num_threads=0` is envpool's one thread per env; set it
  to the cores available. `overrides` replace any envpool option (e.g. a short max_episode_steps
  in tests); the resolved options are readable as `env.config`.
  """
  import envpool  # imported here so that scores and names work where envpool is not installed
  kwargs = dict(protocol_kwargs(protocol, evaluation), **overrides)
  return envpool.make(f'{canonical_game(game)}-v5', env_type='gymnasium', num_envs=num_envs,
                      batch_size=num_envs, seed=seed, num_threads=num_threads, **kwargs)


def is_first(info, lost_life=False, lives=0) -> Any:
  """[E] bool: the observation just returned starts a game (reset or auto-reset pseudo-step).

  Pass it as `first` to `atari_replay.add`; the step that returned it is not a transition. Also a
  game envpool began inside a life reset: when the game ends during the no-ops it plays after a life
  loss (`lost_life` on the previous step, with `lives` left), it resets the game there, refills the
  stack with the new game's first frame and raises the lives, but leaves `elapsed_step` counting and
  sets no flag (RoadRunner: ~9% of games under random play).
  """
  return (info['elapsed_step'] == 0) | (lost_life & (info['lives'] > lives))


def game_over(terminated, truncated, info) -> Any:
  """[E] bool: the game really ended (not a life loss): the next step resets, and a score is final.
  The step's own `terminated` marks life losses too (episodic lives); info's marks the game's end. Both
  are needed: a game that ends during the FIRE of a life reset sets info's on that (non-terminal)
  step and again on the next, which terminates."""
  return (terminated & (info['terminated'] != 0)) | truncated


def raw_reward(info) -> Any:
  """[E] float: the unclipped game reward of the step, for scores (the env may clip `reward`)."""
  return info['reward']
