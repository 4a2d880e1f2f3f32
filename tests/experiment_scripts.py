"""Loads a script of experiments/ as a module, so tests can call its functions directly."""
import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name: str):
  spec = importlib.util.spec_from_file_location(
      f'experiments_{name}', os.path.join(REPO, 'experiments', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
