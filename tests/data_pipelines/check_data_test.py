"""Tests of ``mcc-jax check-data`` and ``mcc-jax build-tfds``."""

import os

import pytest

from mcc_jax.data_pipelines.data_check import scan_dataset
from mcc_jax import cli

SIZE = 8


@pytest.fixture
def tree(tmp_path, media):
  root = tmp_path / "root"
  for split, count in (("train", 3), ("test", 2)):
    for number in range(count):
      media.write_frame_folder(root / split / f"id{number}#clip",
                               media.coded_video(number, 3 + number, SIZE))
  (root / "train" / ".DS_Store").write_bytes(b"junk")
  return root


def test_clean_dataset_passes(tree, capsys):
  assert cli.main(["check-data", "--root", str(tree), "--image-size", str(SIZE)]) == 0
  out = capsys.readouterr().out
  assert "all videos are readable" in out
  # 3 + 4 + 5 train frames, 3 + 4 test frames.
  assert any(line.split() == ["train", "3", "3", "12", "0"] for line in out.splitlines())
  assert any(line.split() == ["test", "2", "2", "7", "0"] for line in out.splitlines())


def test_bad_files_are_listed_and_fail_the_check(tree, capsys):
  (tree / "train" / "broken.mp4").write_bytes(b"\x00" * 50)
  single = tree / "test" / "short"
  single.mkdir()
  (tree / "test" / "short" / "0.png").write_bytes(
      (tree / "test" / "id0#clip" / "0000000.png").read_bytes())
  # One frame makes training pairs (drawn with replacement), not an evaluation video.
  (tree / "train" / "short").mkdir()
  (tree / "train" / "short" / "0.png").write_bytes(
      (tree / "test" / "id0#clip" / "0000000.png").read_bytes())
  assert cli.main(["check-data", "--root", str(tree), "--image-size", str(SIZE)]) == 1
  captured = capsys.readouterr()
  assert "2 bad file(s):" in captured.out
  assert str(tree / "train" / "short") not in captured.out
  assert f"{tree / 'train' / 'broken.mp4'}: cannot open video" in captured.out
  assert f"{single}: has 1 frame(s)" in captured.out
  assert "2 bad file(s); fix or remove them" in captured.err
  assert cli.main(["check-data", "--root", str(tree), "--image-size", str(SIZE),
                   "--skip-bad-files"]) == 0
  assert "2 bad file(s) will be skipped" in capsys.readouterr().out


def test_missing_root_and_missing_split(tmp_path, tree, capsys):
  assert cli.main(["check-data", "--root", str(tmp_path / "absent")]) == 2
  assert "absent" in capsys.readouterr().err
  report = scan_dataset(str(tree), SIZE, ("train", "validation"))
  assert report.split_problems and "validation" in report.split_problems[0]
  assert cli.main(["check-data", "--root", str(tree), "--splits", "train,validation",
                   "--skip-bad-files"]) == 1


def test_build_tfds_command_writes_a_loadable_dataset(tree, tmp_path, capsys):
  output = tmp_path / "records"
  assert cli.main(["build-tfds", "--root", str(tree), "--output", str(output),
                   "--image-size", str(SIZE), "--frame-format", "jpeg"]) == 0
  assert "name='tfds'" in capsys.readouterr().out
  from mcc_jax import data_pipelines
  config = data_pipelines.datasets_config(name="tfds", root=str(output), image_size=SIZE)
  assert len(data_pipelines.eval_video_names(config)) == 2
  assert os.path.isdir(output / "talking_head_videos" / f"{SIZE}px")
