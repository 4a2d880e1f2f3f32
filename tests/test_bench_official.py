"""experiments/bench_official.py: it reads both codes' output as they print it."""
import sys
import textwrap

import pytest

from experiment_scripts import load

bench = load('bench_official')


@pytest.mark.parametrize('solved', [350.0, None])
def test_our_row_is_parsed_as_bench_deepsea_prints_it(solved):
  row = load('bench_deepsea').official_row(19.51, 3.84, 0.2304, solved)
  match = bench.OUR_ROW.search(row)
  assert match.groups() == ('19.5', '3.8', '0.230', str(solved))


def fake_official(tmp_path, rewards):
  """A stand-in for the official code's DeepSea script that prints its per-epoch line."""
  script = tmp_path / 'hyperagent' / 'scripts' / 'hyperagent' / 'run_deepsea.py'
  script.parent.mkdir(parents=True)
  for folder in (tmp_path / 'hyperagent', script.parent.parent, script.parent):
    (folder / '__init__.py').write_text('')
  script.write_text(textwrap.dedent(f'''
      for epoch, rew in enumerate({rewards!r}, 1):
        print('Epoch #%d: test_reward: %.6f(mean) 0.000000(std), best_reward: %.6f(mean) 0.000000(std) in #1'
              % (epoch, rew, rew))
  '''))
  return tmp_path


def test_official_run_finds_the_first_all_optimal_epoch(tmp_path):
  # Epoch 3 is the first whose mean test return is 0.99 (every episode at the treasure); epoch 2's
  # 0.9801 is one miss in 100. Epoch k ends after k * 1,000 steps = k * 50 episodes at N = 20.
  rewards = [-0.01, 0.9801, 0.99] + [0.99] * (bench.EPOCHS - 3)
  run = bench.run_official(fake_official(tmp_path, rewards), sys.executable, tmp_path / 'log')
  assert run.solved_episode == 150
  assert run.wall_s > 0 and run.per_1000_s >= 0
  assert 'Epoch #50' in (tmp_path / 'log').read_text()


def test_official_run_that_stops_early_is_an_error(tmp_path):
  with pytest.raises(SystemExit, match='stopped early'):
    bench.run_official(fake_official(tmp_path, [0.5] * 10), sys.executable, tmp_path / 'log')
