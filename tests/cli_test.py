"""The mcc-jax command line."""

import subprocess
import sys

from mcc_jax import cli


def test_help_lists_the_subcommands(capsys):
  assert cli.main([]) == 2
  out = capsys.readouterr().out
  assert "usage: mcc-jax" in out and "demo" in out


def test_console_script_help_runs():
  result = subprocess.run([sys.executable, "-m", "mcc_jax.cli", "--help"], capture_output=True,
                          text=True)
  assert result.returncode == 0
  assert "COMMAND" in result.stdout


def test_ops_demo_runs_and_writes_its_picture(tmp_path, capsys):
  output = tmp_path / "ops_demo.png"
  assert cli.main(["ops-demo", "--size", "32", "--output", str(output)]) == 0
  out = capsys.readouterr().out
  assert "straight-through gradient == 1: True" in out
  assert output.stat().st_size > 0


def _hide_modules(monkeypatch, hidden):
  """Makes ``importlib.util.find_spec`` (and so ``extras.require``) miss ``hidden``."""
  import importlib.util  # pylint: disable=import-outside-toplevel

  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a, **k: None if name in hidden else real(name, *a, **k))


def test_a_command_without_its_extra_says_which_in_one_line(monkeypatch, capsys, tmp_path):
  _hide_modules(monkeypatch, {"clu"})
  status = cli.main(["train", "--config=sample", f"--workdir={tmp_path}"])
  assert status == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["mcc-jax train needs the 'train' extra, which is not installed (missing: clu): "
                 'pip install "mcc-jax[train]"'], err
  assert not list(tmp_path.iterdir())  # nothing started


def test_every_command_names_an_extra_or_needs_only_the_core():
  from mcc_jax import extras  # pylint: disable=import-outside-toplevel

  for name, command in cli.COMMANDS.items():
    assert command.extra is None or command.extra in extras.EXTRAS, name


def test_a_missing_module_met_while_running_is_named_by_its_extra(monkeypatch, capsys):
  # Not caught up front (say, torch for the FID weights): the command still ends in one
  # line naming the extra, exit status 2.
  def run(args):
    raise ModuleNotFoundError("No module named 'torch'", name="torch")

  import mcc_jax.commands.animate as animate  # pylint: disable=import-outside-toplevel

  monkeypatch.setattr(animate, "run", run)
  status = cli.main(["animate", "--workdir=x", "--source=a.png", "--driving=b.mp4",
                     "--output=c.mp4"])
  assert status == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'pip install "mcc-jax[convert]"' in err[0], err
  assert err[0].startswith("mcc-jax animate: ")


def test_an_unrelated_import_error_is_not_disguised(monkeypatch):
  def run(args):
    raise ModuleNotFoundError("No module named 'nonexistent_thing'", name="nonexistent_thing")

  import mcc_jax.commands.animate as animate  # pylint: disable=import-outside-toplevel

  monkeypatch.setattr(animate, "run", run)
  import pytest  # pylint: disable=import-outside-toplevel

  with pytest.raises(ModuleNotFoundError, match="nonexistent_thing"):
    cli.main(["animate", "--workdir=x", "--source=a.png", "--driving=b.mp4", "--output=c.mp4"])
