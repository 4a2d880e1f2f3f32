"""The package layout: every import runs downward (no cycles; the core never imports a wing), and each
wing imports alone in a fresh interpreter."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'src', 'hyperagent')
WINGS = ('deepsea', 'atari', 'bsuite', 'minatar')


def modules() -> dict[str, str]:
  """Dotted module name -> file, for every module of the package."""
  found = {}
  for folder, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith('.py'):
        rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(PACKAGE))[:-3].replace(os.sep, '.')
        found[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = os.path.join(folder, name)
  return found


def import_graph() -> dict[str, set[str]]:
  """Module -> the package modules it imports anywhere in its file (lazy imports count too)."""
  known = modules()
  graph = {}
  for module, path in known.items():
    edges = set()
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.Import):
        edges.update(alias.name for alias in node.names if alias.name in known)
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        for alias in node.names:  # `from hyperagent.deepsea import loop` imports a module
          sub = f'{node.module}.{alias.name}'
          edges.add(sub if sub in known else node.module)
    graph[module] = {e for e in edges if e in known and e != module and e != 'hyperagent'}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  state: dict[str, int] = {}  # 1: on the current path, 2: done

  def visit(node, path):
    state[node] = 1
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        return path + [node, nxt]
      if nxt not in state:
        cycle = visit(nxt, path + [node])
        if cycle:
          return cycle
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node, [])
      if cycle:
        return cycle
  return None


def test_graph_finder_sees_a_cycle():
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) is not None
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_imports_have_no_cycle():
  cycle = find_cycle(import_graph())
  assert cycle is None, ' -> '.join(cycle)


def test_the_core_imports_no_wing():
  graph = import_graph()
  core = [m for m in graph if m.count('.') == 1]  # hyperagent.<module>
  assert 'hyperagent.agent' in core and 'hyperagent.checkpoint' in core
  for module in core:
    wings = sorted(e for e in graph[module] if e.split('.')[1] in WINGS)
    assert not wings, f'{module} imports {wings}'


@pytest.mark.parametrize('wing', WINGS)
def test_each_wing_imports_alone_in_a_fresh_interpreter(wing):
  names = sorted(m for m in modules() if m.startswith(f'hyperagent.{wing}.'))
  assert names, wing
  proc = subprocess.run([sys.executable, '-c', ''.join(f'import {m}\n' for m in names)],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
