"""gymnax's MinAtar games against the reference `minatar` package: the comparison (harness.py) and,
per game, the translation of the reference's state into gymnax's and the differences found."""
from minatar_reference import asterix, breakout, freeway, seaquest, space_invaders
from minatar_reference.harness import Game, Report, compare, compare_reset

GAMES = {module.GAME.name: module.GAME for module in (asterix, breakout, freeway, seaquest, space_invaders)}
