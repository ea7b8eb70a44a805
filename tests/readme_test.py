"""The README's code and commands stay true."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme():
  return (ROOT / "README.md").read_text(encoding="utf-8")


def test_ops_example_runs():
  section = _readme().split("## Reusing the ops in your project", 1)[1]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  out = namespace["out"]
  assert out.indices.shape == (4, 16, 16)
  assert namespace["warped"].shape == (4, 128, 128, 3)
  assert float(abs(namespace["warped"] - namespace["same"]).max()) < 1e-6


def test_model_example_runs():
  section = _readme().split("## The model", 1)[1]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  out = namespace["out"]
  assert out.image.shape == (1, 64, 64, 3)
  assert len(out.flows) == 5 and out.low_resolution_image is None


def test_set_up_commands_are_the_ones_ci_runs():
  readme = _readme()
  ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
  for marker in ("main job", "tests"):
    assert f"<!-- command: {marker} -->" in readme
    assert f"readme_command '{marker}'" in ci or f"readme_command {marker}" in ci
  commands = subprocess.run(
      ["bash", "-c", 'source <(sed -n "/^readme_command()/,/^}/p" .ci/run); '
       'readme_command "main job"; readme_command tests'],
      cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
  assert commands[0].startswith('pip install -e ".[train]"') and "mcc-jax" in commands[0]
  assert commands[1].startswith('pip install -e ".[test]"') and "pytest" in commands[1]


def test_ops_and_models_import_without_tensorflow():
  # A meta-path hook makes any TensorFlow import fail loudly in the child process.
  code = (
      "import sys\n"
      "class Block:\n"
      "  def find_spec(self, name, path=None, target=None):\n"
      "    if name == 'tensorflow' or name.startswith('tensorflow.'):\n"
      "      raise ImportError('tensorflow must not be imported')\n"
      "sys.meta_path.insert(0, Block())\n"
      "import mcc_jax.ops, mcc_jax.models, mcc_jax.losses, mcc_jax.train.step\n"
      "print('ok')\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "ok"


def _readme_commands():
  """Every `mcc-jax COMMAND ...` line of the README's shell blocks (continuations joined)."""
  blocks = re.findall(r"```bash\n(.*?)```", _readme(), re.S)
  for block in blocks:
    for line in block.replace("\\\n", " ").splitlines():
      for part in line.split("&&"):
        part = part.split("#", 1)[0].strip()
        if part.startswith("mcc-jax "):
          yield part.split()


def test_command_lines_use_flags_their_commands_accept():
  import argparse
  import importlib

  from mcc_jax import cli

  seen = set()
  for words in _readme_commands():
    name = words[1]
    assert name in cli.COMMANDS, f"README runs an unknown command: {' '.join(words)}"
    module = importlib.import_module(cli.COMMANDS[name].module)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    known = {option for action in parser._actions for option in action.option_strings}
    for word in words[2:]:
      flag = word.split("=", 1)[0]
      if flag.startswith("--") and not flag.startswith("--config"):
        assert flag in known, f"README: `mcc-jax {name}` has no flag {flag}"
    seen.add(name)
  assert {"train", "animate", "crop-video"} <= seen
