"""Command lines generated from each wing's run-settings dataclass: every field is a flag with help,
and the parsed flags give back the dataclass."""
import argparse
import dataclasses
import json
import os
import shutil

import pytest

from hyperagent import cli
from hyperagent.atari.loop import RunConfig
from hyperagent.bsuite.sweep import SweepSettings
from hyperagent.deepsea.run import RunSpec


def parser_for(cls, exclude=()):
  parser = argparse.ArgumentParser(exit_on_error=False)
  cli.add_settings(parser, cls, exclude=exclude)
  return parser


@pytest.mark.parametrize('cls', [RunSpec, RunConfig, SweepSettings])
def test_every_field_is_a_documented_flag_and_defaults_round_trip(cls):
  parser = parser_for(cls)
  flags = {action.dest: action for action in parser._actions if action.dest != 'help'}
  assert set(flags) == {f.name for f in dataclasses.fields(cls)}
  assert all(action.help for action in flags.values())
  assert cli.settings_from(cls, parser.parse_args([])) == cls()


def test_flags_parse_to_the_fields_types():
  args = parser_for(RunConfig, exclude=('overrides',)).parse_args(
      ['--game', 'ms_pacman', '--chunk', '16', '--no-clip-rewards', '--replay-ratio', '0.25', '--seed', '3'])
  run = cli.settings_from(RunConfig, args, overrides=(('warmup_steps', 5),))
  assert run == RunConfig(game='MsPacman', chunk=16, clip_rewards=False, replay_ratio=0.25, seed=3,
                          overrides=(('warmup_steps', 5),))
  spec = cli.settings_from(RunSpec, parser_for(RunSpec).parse_args(
      ['--size', '10', '--seeds', '2025,2030', '--stochastic', '--episodes', '7']))
  assert spec == RunSpec(size=10, seeds=(2025, 2030), stochastic=True, episodes=7) and not spec.deterministic
  assert RunSpec(size=30).episodes == 3_333  # the official budget when none is given (SPEC §5.1's table)


def test_official_budgets_per_size_and_none_past_120():
  """SPEC §5.1's table; a size between the listed ones takes the next listed size's budget (our rule)."""
  from hyperagent.deepsea.run import official_episodes
  assert [official_episodes(n) for n in (10, 20, 21, 30, 31, 100, 101, 120)] == [
      2_500, 2_500, 3_333, 3_333, 3_000, 10_000, 12_500, 12_500]
  with pytest.raises(ValueError, match='no official budget for size 121'):
    official_episodes(121)


def test_bad_flag_values_name_what_is_valid():
  parser = parser_for(RunConfig)
  with pytest.raises(argparse.ArgumentError, match='valid names: .*Breakout'):
    parser.parse_args(['--game', 'breakoutt'])
  with pytest.raises(argparse.ArgumentError, match="invalid choice: 'rainbow'"):
    parser.parse_args(['--agent', 'rainbow'])
  with pytest.raises(argparse.ArgumentError, match='invalid int value'):
    parser.parse_args(['--chunk', 'abc'])


@pytest.mark.parametrize('text, seeds', [('3', (0, 1, 2)), ('2025,2030', (2025, 2030)), ('5-7', (5, 6, 7))])
def test_parse_seeds(text, seeds):
  assert cli.parse_seeds(text) == seeds


@pytest.mark.parametrize('text', ['0', '5-3', '1,1', 'abc', '-2'])
def test_parse_seeds_refuses_empty_repeated_or_unreadable(text):
  with pytest.raises(argparse.ArgumentTypeError, match='count'):
    cli.parse_seeds(text)


@pytest.mark.parametrize('text', ['2147483648', '1001', '0-1000', '5-2147483647'])
def test_parse_seeds_refuses_too_many_before_building_them(text):
  """'2147483648' once built a tuple of 2**31 seeds (a hang, then out of memory) before its check."""
  with pytest.raises(argparse.ArgumentTypeError, match='at most 1,000 seeds'):
    cli.parse_seeds(text)
  assert len(cli.parse_seeds('1000')) == len(cli.parse_seeds('0-999')) == 1000


def test_a_field_without_help_is_refused():
  @dataclasses.dataclass
  class Bare:
    x: int = 1
  with pytest.raises(TypeError, match='cli.setting'):
    cli.add_settings(argparse.ArgumentParser(), Bare)


def test_a_settings_record_round_trips_through_json():
  """config.json keeps a run's settings as `dataclasses.asdict`; JSON turns the seed tuple into a list,
  which `from_record` turns back, so the rebuilt settings equal (and hash like) the originals."""
  from hyperagent.minatar.run import RunSpec as MinAtarSpec
  for spec in (RunSpec(size=12, seeds=(3, 7)), MinAtarSpec(game='freeway', seeds=(5, 2), steps=100)):
    record = json.loads(json.dumps(dataclasses.asdict(spec)))
    assert isinstance(record['seeds'], list)
    rebuilt = cli.from_record(type(spec), record)
    assert rebuilt == spec and hash(rebuilt) == hash(spec) and rebuilt.seeds == spec.seeds


def test_a_record_of_another_kind_is_refused_naming_its_fields():
  """A MinAtar run's spec read as a DeepSea spec (a diagnostic script pointed at the wrong folder) is a
  ValueError naming the foreign fields, not a TypeError from deep inside; a record without a field that
  has a default (written before the field existed) still loads."""
  from hyperagent.minatar.run import RunSpec as MinAtarSpec
  record = json.loads(json.dumps(dataclasses.asdict(MinAtarSpec(game='freeway', seeds=(5,), steps=100))))
  with pytest.raises(ValueError, match='not a record of RunSpec: unknown field.*eval_steps, game, steps$'):
    cli.from_record(RunSpec, record)
  assert cli.from_record(MinAtarSpec, {'game': 'freeway', 'seeds': [1]}) == MinAtarSpec(game='freeway', seeds=(1,))


def test_labelled_folder_reads_label_then_folder(tmp_path):
  odd = tmp_path / 'a=b'  # an existing folder is taken whole, '=' and all
  odd.mkdir()
  assert cli.labelled_folder('results/dqn') == ('', 'results/dqn')
  assert cli.labelled_folder('paper scales=results/x') == ('paper scales', 'results/x')
  assert cli.labelled_folder('a=b=c') == ('a', 'b=c')
  assert cli.labelled_folder(str(odd)) == ('', str(odd))
  for bad in ('=results/x', 'label='):
    with pytest.raises(ValueError, match='LABEL=FOLDER'):
      cli.labelled_folder(bad)


def test_counts_are_whole_numbers_of_at_least_one():
  assert cli.count('3') == 3
  for bad, says in (('0', 'at least 1, got 0'), ('-2', 'at least 1, got -2'), ('2.5', "got '2.5'"), ('x', "got 'x'")):
    with pytest.raises(argparse.ArgumentTypeError, match=says):
      cli.count(bad)


@pytest.mark.skipif(shutil.which('make') is None, reason='needs make')
def test_make_stops_on_a_variable_its_target_does_not_read():
  """`make deepsea-scaling AGENT=dqn` would run all three agents (the target reads AGENTS): it stops,
  naming what the target reads; `make -n` prints the commands without running them."""
  import subprocess
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  make = lambda *args: subprocess.run(['make', '-n', '-C', root, *args], capture_output=True, text=True)
  wrong = make('deepsea-scaling', 'AGENT=dqn')
  assert wrong.returncode == 2 and 'make deepsea-scaling reads no AGENT; it reads SIZES AGENTS SEEDS ARGS' in wrong.stderr
  assert make('deepsea', 'SEED=3').returncode == 2
  right = make('deepsea-scaling', 'AGENTS=dqn', 'SIZES=10 20 30')
  assert right.returncode == 0 and '--agents dqn' in right.stdout and '--sizes 10 20 30' in right.stdout


def test_paths_that_cannot_be_written_are_usage_errors(tmp_path, capsys):
  """A checkpoint path under a file or naming a folder, an archive folder that is a file: exit 2 and one
  line, not a traceback from os.makedirs / os.remove."""
  import experiment_scripts
  a_file = tmp_path / 'notes.txt'
  a_file.write_text('x')
  (tmp_path / 'folder').mkdir()
  for script, argv, says in (
      ('custom_env', ['--checkpoint', str(a_file / 'checkpoint.npz')], 'is a file'),
      ('custom_env', ['--checkpoint', str(tmp_path / 'folder'), '--fresh'], 'is a folder'),
      ('archive_results', [str(tmp_path), '--to', str(a_file)], 'is a file')):
    with pytest.raises(SystemExit) as stopped:
      experiment_scripts.load(script).main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and says in err and 'Traceback' not in err, (script, err)
  assert a_file.read_text() == 'x' and (tmp_path / 'folder').is_dir()


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'), reason='finds the import window in /proc (Linux)')
@pytest.mark.parametrize('script, args', [
    ('bsuite_run.py', ['--sweep', 'bandit/0', '--episodes', '5', '--results']),
    ('deepsea.py', ['--size', '5', '--episodes', '10', '--out']),
    ('minatar.py', ['--game', 'breakout', '--steps', '1000', '--out']),
    ('atari.py', ['--game', 'pong', '--out'])])
def test_ctrl_c_while_the_entry_point_imports_ends_it_quietly(tmp_path, script, args):
  """Ctrl-C while JAX loads: the process ends at once by the signal, as a shell expects, with no
  traceback and nothing written (the handlers that save and explain come in with `main`). The signal
  goes in the import window, read from /proc rather than after a fixed delay (which a fast machine's
  imports could outrun): numpy is mapped (the imports after the script's first lines have begun) and
  SIGINT is not caught (the script put back the default; `main` has not yet caught it again)."""
  import signal
  import subprocess
  import sys
  import time
  path = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'experiments', script)
  out = tmp_path / 'run'
  proc = subprocess.Popen([sys.executable, path, *args, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)

  def importing():
    with open(f'/proc/{proc.pid}/status') as f:
      mask = next(line.split()[1] for line in f if line.startswith('SigCgt:'))
    with open(f'/proc/{proc.pid}/maps') as f:
      numpy = 'numpy' in f.read()
    return numpy and not int(mask, 16) >> (signal.SIGINT - 1) & 1

  deadline = time.monotonic() + 60
  while proc.poll() is None and not importing():
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail('no import window seen in 60 s')
    time.sleep(0.001)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=30)
  assert proc.returncode == -signal.SIGINT, err
  assert err == '' and not out.exists()


def test_help_shows_defaults_as_they_would_be_typed():
  """RunSpec's seeds (0,) is the flag '1', not '0' (which the flag refuses); other tuples are lists."""
  help_of = lambda cls, dest: next(a.help for a in parser_for(cls)._actions if a.dest == dest)
  assert help_of(RunSpec, 'seeds').endswith("(default: '1': seed 0)")
  from hyperagent.minatar.run import RunSpec as MinAtarSpec
  assert help_of(MinAtarSpec, 'seeds').endswith('(default: 0,1,2)')
  assert cli.parse_seeds('0,1,2') == MinAtarSpec().seeds


def test_a_negative_first_seed_is_refused_before_any_work(tmp_path, capsys):
  import experiment_scripts
  with pytest.raises(SystemExit) as exit_info:
    experiment_scripts.load('deepsea').main(['--size', '4', '--episodes', '3', '--seed', '-5',
                                             '--out', str(tmp_path / 'r')])
  assert exit_info.value.code == 2 and '--seed -5 gives seeds -5..-5' in capsys.readouterr().err
  assert not (tmp_path / 'r').exists()


def test_a_folder_to_write_into_cannot_be_or_sit_under_a_file(tmp_path):
  afile = tmp_path / 'afile'
  afile.write_text('x')
  for bad in (afile, afile / 'sub' / 'deeper'):
    with pytest.raises(ValueError, match=f"cannot be a folder: {afile} is a file"):
      cli.folder(str(bad))
  assert cli.folder(str(tmp_path / 'new' / 'run')) == str(tmp_path / 'new' / 'run')  # created later, by the run
  assert cli.folder(str(tmp_path)) == str(tmp_path)
  parser = argparse.ArgumentParser()
  parser.add_argument('--out', type=cli.folder_flag)
  with pytest.raises(SystemExit) as exit_:
    parser.parse_args(['--out', str(afile)])
  assert exit_.value.code == 2
