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


def test_demo_runs_and_writes_its_picture(tmp_path, capsys):
  output = tmp_path / "demo.png"
  assert cli.main(["demo", "--size", "32", "--output", str(output)]) == 0
  out = capsys.readouterr().out
  assert "straight-through gradient == 1: True" in out
  assert output.stat().st_size > 0
