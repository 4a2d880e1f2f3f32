"""One frozen config for every agent, with presets equal to SPEC.md §4.

HyperAgent, Ensemble+ and (Double) DQN are the same code under different configs:
the index distribution decides which agent it is (DESIGN.md, "One idea, three agents").
"""
from __future__ import annotations

import ast
import dataclasses
import types
import typing
from typing import Any, Mapping, Sequence

from hyperagent import cli, indices

TORSOS = ('mlp', 'nature_cnn', 'minatar_cnn', 'identity')
INDEX_DISTS = tuple(indices.INDEX_LAWS)
PERTURBATION_DISTS = tuple(indices.PERTURBATION_LAWS)
BIAS_INITS = ('sphere', 'xavier')
MODELS = ('hypermodel', 'ensemble')
ENSEMBLE_TORSOS = ('independent', 'shared')
AGENTS = ('hyperagent', 'ensemble', 'dqn', 'hyperagent_one_hot')
ENVS = ('deepsea', 'atari', 'minatar')


@dataclasses.dataclass(frozen=True)
class Config:
  """Every hyperparameter of the agent. Symbols are the paper's (SPEC.md)."""
  # --- network (SPEC §1) ---
  model: str = 'hypermodel'             # 'hypermodel': one linear hypermodel head over a shared torso (SPEC §1);
                                        # 'ensemble': Ensemble+ (Osband et al. 2018), index_dim independent
                                        # Double-DQN members, each a full network with its own frozen prior,
                                        # target network and optimiser state (agent.member_config)
  bootstrap_prob: float = 1.0           # model='ensemble': each stored transition joins each member's
                                        # bootstrap sample with this probability (a mask drawn once, at
                                        # storage); 1.0 = every member trains on every transition, the
                                        # default of bsuite's boot_dqn (mask_prob=1) and of Osband et al. 2018
  ensemble_torso: str = 'independent'   # model='ensemble': 'independent' (every member a full network, as
                                        # bsuite's boot_dqn) or 'shared' (one torso, M independent linear heads
                                        # and prior heads, no shared intercept: the cheaper Atari and
                                        # MinAtar form)
  torso: str = 'mlp'                    # 'mlp' (DeepSea), 'nature_cnn' (Atari), 'minatar_cnn' (MinAtar),
                                        # 'identity' (linear bandits, tests)
  hidden_sizes: tuple[int, ...] = (64, 64)  # MLP widths; the last one is the feature width H
  cnn_feature_dim: int = 256            # H for the CNN torsos (the FC after the convolutions)
  index_dim: int = 4                    # M; 0 means no index (DQN)
  index_dist: str = 'sphere'            # ξ law: 'sphere' = Gaussian, normalised inside the network (the paper's)
  base_prior: bool = True               # frozen prior torso φ₀ feeding the prior hypermodel
  prior_std: float = 1.0                # row scale of the sDB prior U₀ (and of the 'sphere' biases)
  prior_scale: float = 10.0             # Q = posterior_scale·Q_post + prior_scale·Q_prior
  posterior_scale: float = 1.0          # weight of the trained part in Q (SPEC §1.6)
  bias_init: str = 'sphere'             # b, b₀: 'sphere' (prior_std × unit vector, DeepSea) or 'xavier' (Atari)
  # --- loss (SPEC §2.6) ---
  num_update_indices: int = 20          # K indices per transition
  discount: float = 0.99                # γ
  n_step: int = 1                       # n
  perturbation_dist: str = 'sphere'     # law of the stored z
  perturbation_scale: float = 0.0       # σ in σ⟨ξ, z⟩
  hyper_reg_coef: float = 0.0           # λ_r, applied as λ_r / |D|
  grad_penalty_coef: float = 0.0        # λ_g, gradient-norm penalty (double backprop)
  max_grad_norm: float = 10.0           # global-norm gradient clipping before Adam
  learning_rate: float = 1e-3           # Adam's step size
  adam_eps: float = 1.5e-4              # Adam's ε, added to √v̂
  target_update_period: int = 4         # T, in gradient steps
  batch_size: int = 128                 # B
  # --- acting (SPEC §2.1-2.2) ---
  index_resample_prob: float | None = None  # per-step switch while training; None means 1 - γ
  epsilon_start: float = 0.0            # ε-greedy (the DQN baseline only)
  epsilon_end: float = 0.0
  epsilon_decay_steps: int = 1
  epsilon_eval: float = 0.0
  # --- data (SPEC §3) ---
  replay_capacity: int = 1_000_000      # transitions kept (FIFO)
  warmup_steps: int = 128               # uniform random actions, no updates

  def __post_init__(self):
    _check_types(self)
    cli.check_choice('model', self.model, MODELS)
    cli.check_choice('ensemble_torso', self.ensemble_torso, ENSEMBLE_TORSOS)
    cli.check_choice('torso', self.torso, TORSOS)
    cli.check_choice('index_dist', self.index_dist, INDEX_DISTS)
    cli.check_choice('perturbation_dist', self.perturbation_dist, PERTURBATION_DISTS)
    cli.check_choice('bias_init', self.bias_init, BIAS_INITS)
    if self.index_dim < 0:
      raise ValueError(f'index_dim (M) must be >= 0, got {self.index_dim}.')
    if (self.index_dist == 'none') != (self.index_dim == 0):
      raise ValueError(
          f"index_dim=0 goes with index_dist='none' and only with it; got index_dim={self.index_dim}, "
          f"index_dist={self.index_dist!r}.")
    for name in ('num_update_indices', 'n_step', 'target_update_period', 'batch_size',
                 'replay_capacity', 'epsilon_decay_steps'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    if not 0.0 <= self.discount <= 1.0:
      raise ValueError(f'discount must be in [0, 1], got {self.discount}.')
    if self.model == 'ensemble' and (self.index_dist != 'one_hot' or self.index_dim < 1):
      raise ValueError(f"model='ensemble' draws one of index_dim members: it needs index_dist='one_hot' and "
                       f'index_dim >= 1; got index_dist={self.index_dist!r}, index_dim={self.index_dim}.')
    hyperagent_only = {name: getattr(self, name) for name in ('perturbation_scale', 'hyper_reg_coef', 'grad_penalty_coef')
                       if getattr(self, name)}
    if self.model == 'ensemble' and hyperagent_only:  # else the shared torso would use them and members drop them
      raise ValueError(f"model='ensemble' (Ensemble+) has no perturbation, index regulariser or gradient penalty: "
                       f'perturbation_scale, hyper_reg_coef and grad_penalty_coef must be 0; got {hyperagent_only}.')
    if not 0.0 < self.bootstrap_prob <= 1.0:
      raise ValueError(f'bootstrap_prob must be in (0, 1], got {self.bootstrap_prob}.')
    if self.bootstrap_prob < 1.0 and self.model != 'ensemble':
      raise ValueError(f"bootstrap_prob < 1 masks Ensemble+ members: it needs model='ensemble', got {self.model!r}.")
    if self.warmup_steps < 0:
      raise ValueError(f'warmup_steps must be >= 0, got {self.warmup_steps}.')
    if not self.hidden_sizes or min(self.hidden_sizes) < 1:
      raise ValueError(f'hidden_sizes must be non-empty positive widths, got {self.hidden_sizes}.')
    for name in ('learning_rate', 'adam_eps', 'max_grad_norm', 'cnn_feature_dim'):
      if getattr(self, name) <= 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}.')
    for name in ('prior_std', 'prior_scale', 'perturbation_scale', 'hyper_reg_coef', 'grad_penalty_coef'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}.')
    for name in ('index_resample_prob', 'epsilon_start', 'epsilon_end', 'epsilon_eval'):
      value = getattr(self, name)
      if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f'{name} must be a probability in [0, 1], got {value}.')

  def warmed_up(self, transitions):
    """SPEC §3's warm-up, the one predicate every loop uses: uniform random actions and no gradient
    step while fewer than `warmup_steps` transitions are stored; the first step comes right after
    the `warmup_steps`-th. Works on Python ints, numpy and JAX arrays."""
    return transitions >= self.warmup_steps

  @property
  def resample_prob(self) -> float:
    return 1.0 - self.discount if self.index_resample_prob is None else self.index_resample_prob

  def replace(self, **overrides: Any) -> 'Config':
    unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
    if unknown:
      raise ValueError(f'Unknown config field(s) {sorted(unknown)}; valid fields: '
                       f'{sorted(f.name for f in dataclasses.fields(self))}.')
    return dataclasses.replace(self, **overrides)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, settings: Mapping[str, Any]) -> 'Config':
    """A Config from its `to_dict()` (JSON turns tuples into lists; Config wants tuples)."""
    return cli.from_record(cls, settings)


def _check_types(config: Config) -> None:
  """Every field has its declared type (ints given for float fields become floats), so a bad
  override such as learning_rate=abc fails here, naming the field, before anything is compiled."""
  hints = typing.get_type_hints(Config)
  for field in dataclasses.fields(config):
    value, kind = getattr(config, field.name), hints[field.name]
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType)
    if optional:
      if value is None:
        continue
      kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
      object.__setattr__(config, field.name, float(value))
      continue
    if kind is int:
      ok = isinstance(value, int) and not isinstance(value, bool)
    elif typing.get_origin(kind) is tuple:
      ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
      ok = isinstance(value, kind)
    if not ok:
      expected = {int: 'an integer', float: 'a number', str: 'a string', bool: 'True or False'}.get(
          kind, 'a tuple of integers, e.g. (64, 64)')
      raise ValueError(f'{field.name} must be {expected}{" or None" if optional else ""}, got {value!r}.')


# SPEC §4, DeepSea column.
DEEPSEA = Config()

# SPEC §4, Atari column.
ATARI = Config(
    torso='nature_cnn', prior_std=0.1, prior_scale=0.1, posterior_scale=0.1, bias_init='xavier',
    n_step=5, perturbation_scale=0.01, hyper_reg_coef=0.01, grad_penalty_coef=0.01,
    learning_rate=1e-4, target_update_period=5, batch_size=32, replay_capacity=100_000,
    warmup_steps=2_000)

# MinAtar (Young & Tian 2019), not in the paper. Everything DQN has is MinAtar's DQN's: its torso (3x3
# conv, 16 filters, then 128 units), batch 32, replay 100k, 5,000 random steps before learning, γ =
# 0.99, learning rate 2.5e-4 (theirs is RMSProp's; ours stays Adam, as every preset here), the target
# copied every 1,000 steps and 1-step returns. Unlike MinAtar's DQN, both learners keep the Atari
# column's gradient-norm penalty λ_g = 0.01 (the official code's Atari DDQN baseline has it too).
# What is HyperAgent's own is the SPEC's Atari column: prior_std, prior_scale and posterior_scale 0.1,
# σ = 0.01, λ_r = λ_g = 0.01, M and K. MinAtar's long targets (T = 1,000, n = 1) rather than the SPEC's
# short ones (T = 4, n = 5) because on asterix both learners gained from them; chosen there, reported
# on all five games (BENCHMARKS.md, "MinAtar", has the comparison and the earlier settings).
MINATAR = ATARI.replace(torso='minatar_cnn', cnn_feature_dim=128, learning_rate=2.5e-4, batch_size=32,
                        replay_capacity=100_000, warmup_steps=5_000, target_update_period=1_000, n_step=1)

_BASE = {'deepsea': DEEPSEA, 'atari': ATARI, 'minatar': MINATAR}


def make_config(agent: str = 'hyperagent', env: str = 'deepsea', **overrides: Any) -> Config:
  """The preset for (agent, env), then `overrides` (any Config field).

  - hyperagent: SPEC §4 as it stands.
  - ensemble: Ensemble+ (bootstrapped DQN with randomized priors, Osband et al. 2018): 10 independent
    members, each a full network (on Atari and MinAtar ten heads on one shared torso) with its own
    additive frozen prior, trained on its own Double-DQN
    target (its own target network and argmax) on every transition (no bootstrap masks, bsuite
    boot_dqn's default; bootstrap_prob < 1 adds them); one member drawn per episode while acting.
  - dqn: Double DQN with ε-greedy, no index and no prior.
  - hyperagent_one_hot: the hypermodel with one-hot indices over 10 members (an ablation, and this
    project's "ensemble" before session 5): heads U[:, m] + b share b and the torso, and each member
    is regressed onto the target of an independently drawn member.
  """
  cli.check_choice('agent', agent, AGENTS)
  cli.check_choice('env', env, ENVS)
  config = _BASE[env]
  if agent == 'ensemble':
    # Atari: one shared Nature CNN with 10 heads (the paper's "double the parameters"; bootstrapped
    # DQN's Atari form); MinAtar, the Atari stand-in, the same with its CNN (ten full CNNs would cost
    # ~10x DQN's step); elsewhere, as bsuite's boot_dqn, every member a full network.
    torso = 'shared' if env in ('atari', 'minatar') else 'independent'
    config = config.replace(model='ensemble', index_dist='one_hot', index_dim=10, index_resample_prob=0.0,
                            num_update_indices=1, perturbation_scale=0.0, hyper_reg_coef=0.0,
                            grad_penalty_coef=0.0, ensemble_torso=torso)
  elif agent == 'hyperagent_one_hot':
    config = config.replace(index_dist='one_hot', index_dim=10, index_resample_prob=0.0,
                            perturbation_scale=0.0)
  elif agent == 'dqn':
    # SPEC §4 (4), the official DDQN script: 1 → 0.1 over 200k steps for its 2M-step runs, n = 10;
    # MinAtar's DQN: 1 → 0.1 over 100k steps (here from step 0, the warm-up included; MinAtar's
    # dqn.py anneals over the 100k steps after its 5,000-step warm-up)
    decay = {'atari': 200_000, 'minatar': 100_000}.get(env, 10_000)
    # prior_std: DQN has no prior, but the field also scales 'sphere' biases (DeepSea's), so DQN keeps
    # the default everywhere: a change to HyperAgent's prior scales leaves DQN's resolved config, and
    # the checkpoints of its runs, as they were (on Xavier-bias presets the field is inert for DQN).
    config = config.replace(
        index_dist='none', index_dim=0, base_prior=False, prior_std=Config.prior_std, prior_scale=0.0,
        posterior_scale=1.0, num_update_indices=1, perturbation_scale=0.0, hyper_reg_coef=0.0,
        epsilon_start=1.0, epsilon_end=0.01 if env == 'deepsea' else 0.1, epsilon_decay_steps=decay,
        epsilon_eval={'atari': 0.05, 'minatar': 0.0}.get(env, 0.0), n_step=10 if env == 'atari' else config.n_step)
  return config.replace(**overrides)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
  """Command-line overrides ['learning_rate=3e-4', 'hidden_sizes=[32, 32]', 'index_dist=gaussian']
  -> {field: value}: Python literals (lists become tuples), anything else a string. Field names are
  checked when the dict reaches `make_config`/`Config.replace`."""
  overrides: dict[str, Any] = {}
  for item in items:
    name, sep, text = item.partition('=')
    if not sep or not name.strip():
      raise ValueError(f'--set expects FIELD=VALUE, got {item!r}.')
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    overrides[name.strip()] = cli.as_tuple(value)
  return overrides
