"""Command lines generated from run-settings dataclasses: one flag per field, its help from the field.

Each wing keeps its run settings in one frozen dataclass whose fields are declared with `setting`
(default, help, and optionally choices or a parser for the flag's text). `add_settings` turns every
field into a flag (`num_envs` -> `--num-envs`; a bool becomes `--name/--no-name`), and
`settings_from` builds the dataclass back from the parsed arguments, so a new field is a new flag
with its documentation, and no entry point mirrors the fields by hand.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from typing import Any, Callable, Iterable, Mapping, Sequence

# Runs without a progress bar (output to a log file) print where they are this often: jitloop.drive
# (DeepSea, MinAtar) and the bsuite runner's jax engine.
LOG_EVERY_S = 600.0


def setting(default: Any, help: str, *, choices: Sequence[Any] | None = None,
            parse: Callable[[str], Any] | None = None, shown: str | None = None) -> Any:
  """A dataclass field with what its flag needs: `help`, optional `choices`, `parse` (text ->
  value) where the field's type alone does not say how to read the flag, and `shown`, the default as
  the flag would be typed where printing the value would mislead (seeds (0,) is the flag '1')."""
  return dataclasses.field(default=default, metadata=dict(help=help, choices=choices, parse=parse, shown=shown))


def flag(name: str) -> str:
  return '--' + name.replace('_', '-')


def _argument(field: dataclasses.Field, kind: Any) -> dict[str, Any]:
  meta = field.metadata
  if not meta or 'help' not in meta:
    raise TypeError(f'field {field.name!r} has no help: declare it with cli.setting(default, help)')
  default, shown = field.default, meta.get('shown')
  if shown is None and default is not None:
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
  shown = '' if shown is None else f' (default: {shown})'
  kwargs: dict[str, Any] = dict(default=default, help=meta['help'] + shown)
  if meta['choices'] is not None:
    kwargs['choices'] = list(meta['choices'])
  if meta['parse'] is not None:
    kwargs['type'] = reader(meta['parse'])
    return kwargs
  if typing.get_origin(kind) in (typing.Union, types.UnionType):  # Optional[X]: the flag reads X
    kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
  if kind is bool:
    kwargs['action'] = argparse.BooleanOptionalAction
  elif typing.get_origin(kind) is tuple:
    item = typing.get_args(kind)[0]
    kwargs.update(nargs='+', type=item)
  elif kind in (int, float, str):
    kwargs['type'] = kind
  else:
    raise TypeError(f'field {field.name!r}: no flag for type {kind!r}; give it a parse= function')
  return kwargs


def check_choice(what: str, value: Any, valid: Iterable[Any]) -> None:
  """The one error for a bad name anywhere (agent, game, index law, ...): it lists the valid ones."""
  valid = tuple(valid)
  if value not in valid:
    raise ValueError(f'Unknown {what} {value!r}; valid values: {", ".join(map(str, valid))}.')


def reader(parse: Callable[[str], Any]) -> Callable[[str], Any]:
  """`parse` for argparse: its ValueError message (which names the valid values) becomes the usage
  error, instead of argparse's bare 'invalid value'."""
  def read(text: str):
    try:
      return parse(text)
    except ValueError as error:
      raise argparse.ArgumentTypeError(str(error)) from None
  return read


def add_settings(parser: argparse.ArgumentParser, cls: type, exclude: Iterable[str] = (),
                 group: str | None = None) -> None:
  """One flag per field of the dataclass `cls`, except those in `exclude`."""
  hints = typing.get_type_hints(cls)
  target = parser.add_argument_group(group) if group else parser
  for field in dataclasses.fields(cls):
    if field.name not in exclude:
      target.add_argument(flag(field.name), dest=field.name, **_argument(field, hints[field.name]))


def settings_from(cls: type, args: argparse.Namespace, **given: Any) -> Any:
  """`cls` from the parsed flags of its fields (those `add_settings` added), and `given` values for
  the rest. Tuples stay tuples (argparse makes lists); the dataclass validates the values."""
  values = {}
  for field in dataclasses.fields(cls):
    if field.name in given:
      values[field.name] = given[field.name]
    elif hasattr(args, field.name):
      values[field.name] = as_tuple(getattr(args, field.name))
  return cls(**values)


def as_tuple(value: Any) -> Any:
  """A list as a tuple, anything else as it is: argparse, JSON and `ast.literal_eval` give lists
  where the settings dataclasses keep (hashable) tuples."""
  return tuple(value) if isinstance(value, list) else value


def from_record(cls: type, record: Mapping[str, Any]) -> Any:
  """`cls` from a record of its fields, as a run's config.json keeps it (`dataclasses.asdict`).
  A record of another kind (a MinAtar run's spec read as DeepSea's) is a ValueError naming the fields
  `cls` lacks (fields the record lacks take their defaults: records written before a field existed)."""
  unknown = sorted(set(record) - {field.name for field in dataclasses.fields(cls)})
  if unknown:
    raise ValueError(f'not a record of {cls.__name__}: unknown field(s) {", ".join(unknown)}')
  return cls(**{name: as_tuple(value) for name, value in record.items()})


def _flat(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """{'spec.episodes': 60, ...}: nested mappings as dotted keys, so a difference names its leaf."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping) and value:
      flat.update(_flat(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def differences(saved: Mapping[str, Any], current: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
  """'field=saved (now current)' for every field that differs, nested ones named by their dotted path
  ('spec.episodes=60 (now 80)'), after a JSON round trip (tuples and lists compare equal); top-level
  fields in `ignore` may change between a run and its resumption."""
  norm = lambda d: _flat(json.loads(json.dumps({k: v for k, v in dict(d).items() if k not in ignore})))
  saved, current = norm(saved), norm(current)
  return [f'{k}={saved.get(k)!r} (now {current.get(k)!r})'
          for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


# The jitted loops take seeds as int32 (JAX without x64): every seed a run plays is at most this.
MAX_SEED = 2**31 - 1
MAX_SEEDS = 1_000  # seeds of one run: vmapped together, so each one costs memory (a replay per seed)


def parse_seeds(text: str) -> tuple[int, ...]:
  """'3' -> seeds 0, 1, 2; '2025,2030' -> those seeds; '5-9' -> 5..9; anything else is an
  argparse.ArgumentTypeError, which argparse reports as a usage error naming the flag."""
  text = text.strip()
  try:
    if ',' in text:
      seeds = tuple(int(s) for s in text.split(',') if s.strip())
    elif '-' in text.lstrip('-'):
      lo, hi = (int(x) for x in text.split('-'))
      seeds = tuple(range(lo, hi + 1)) if hi - lo < MAX_SEEDS else None
    else:
      seeds = tuple(range(int(text))) if int(text) <= MAX_SEEDS else None
  except ValueError:
    seeds = ()
  if seeds is None or len(seeds) > MAX_SEEDS:  # checked before a range is built: '2147483648' would fill memory
    raise argparse.ArgumentTypeError(f'at most {MAX_SEEDS:,} seeds in one run (they are vmapped together); got {text!r}')
  if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) > MAX_SEED:
    raise argparse.ArgumentTypeError(
        f"seeds must be a count ('3' = 0,1,2), a list ('2025,2030') or a range ('5-9') of distinct seeds in "
        f'0 .. 2**31 - 1; got {text!r}')
  return seeds


def folder(text: str) -> str:
  """A folder a run or report writes into: a ValueError where it, or the part of its path that
  exists, is a file (else the run would fail on its first write with a traceback)."""
  existing = os.path.abspath(text)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f'{text!r} cannot be a folder: {existing} is a file')
  return text


def count(text: str) -> int:
  """A count given on the command line (--seeds N, --steps, --pairs, ...) as an argparse type: an
  integer of at least 1, else the usage error."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a whole number of at least 1, got {text!r}') from None
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
  return value


def file_path(text: str) -> str:
  """A file a command writes (a checkpoint, a JSON of figures): a ValueError where it is a folder or
  its folder cannot be one, checked before the work rather than when the file is written."""
  if os.path.isdir(text):
    raise ValueError(f'{text!r} is a folder: give the path of a file in it')
  folder(os.path.dirname(os.path.abspath(text)))
  return text


def folder_flag(text: str) -> str:
  """`folder` as an argparse type: the bad path is the usage error, exit status 2."""
  return reader(folder)(text)


def labelled_folder(text: str) -> tuple[str, str]:
  """'FOLDER' or 'LABEL=FOLDER' -> (label, folder), label '' when none is given: how the report
  scripts name the runs they read. An existing folder is taken whole, '=' and all; an empty label
  or folder ('=x', 'x=') is a ValueError."""
  label, sep, folder = text.partition('=')
  if not sep or os.path.isdir(text):
    return '', text
  if not label or not folder:
    raise ValueError(f'expected FOLDER or LABEL=FOLDER, got {text!r}')
  return label, folder
