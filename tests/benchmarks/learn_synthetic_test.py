"""benchmarks/learn_synthetic.py: held-out identities only, ground truth, baselines, JSON."""

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

from mcc_jax import config_cli
from mcc_jax.data_pipelines.pair_sampling import person_id
from mcc_jax.data_pipelines.sources import synthetic

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", name="bench")
def _bench():
  spec = importlib.util.spec_from_file_location("learn_synthetic_benchmark",
                                                ROOT / "benchmarks" / "learn_synthetic.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module   # dataclasses look their module up by name
  spec.loader.exec_module(module)
  yield module
  del sys.modules[spec.name]


def _heads(*overrides):
  return config_cli.load_config("heads", list(overrides))


def _psnr(a, b):
  mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
  return 10 * np.log10(255.0**2 / mse)


def _identity_vector(identity):
  import dataclasses  # pylint: disable=import-outside-toplevel
  return np.concatenate([np.ravel(np.asarray(getattr(identity, f.name), np.float64))
                         for f in dataclasses.fields(identity)])


def test_the_benchmark_never_scores_a_train_identity(bench):
  datasets = _heads().datasets
  videos = bench.heldout_videos(datasets, 8, 4)
  train = bench.train_identities_seen(datasets)
  assert len(train) == datasets.synthetic.num_train_identities == 256
  assert {person_id(v.name) for v in videos}.isdisjoint(train)
  # Not only the names: no held-out person looks like any train person.
  train_vectors = np.stack([_identity_vector(synthetic.identity_for(0, "train", p))
                            for p in range(256)])
  for video in videos:
    distance = np.abs(train_vectors - _identity_vector(video.identity)).max(axis=1)
    assert distance.min() > 1e-3, video.name
  # A config whose held-out split is the train split is refused.
  with pytest.raises(ValueError, match="must differ from the train split"):
    bench.heldout_videos(_heads("--config.datasets.eval_split=train").datasets, 8, 4)
  with pytest.raises(ValueError, match="between 2 and the test split's 8"):
    bench.heldout_videos(datasets, 9, 4)


def test_a_plot_without_matplotlib_is_refused_before_training(bench, monkeypatch, capsys):
  # The quick start's command ran 47 minutes in a `train` install and then died drawing
  # its curve: the missing library is named before any training.
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(bench.importlib.util, "find_spec",
                      lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
  monkeypatch.setattr(bench, "heldout_videos", lambda *a: pytest.fail("training started"))
  with pytest.raises(SystemExit) as exit_info:
    bench.main(["--plot", "curve.png", "--minutes", "0"])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert "--plot needs matplotlib" in err and 'pip install "mcc-jax[benchmarks]"' in err


def test_tasks_pair_each_identity_with_the_next_and_render_the_ground_truth(bench):
  videos = bench.heldout_videos(_heads().datasets, 3, 5)
  same, cross, relative = bench.build_tasks(videos)
  assert [t.name for t in (same, cross, relative)] == list(bench.TASKS)
  assert [t.relative for t in (same, cross, relative)] == [False, False, True]
  for task in (same, cross, relative):
    assert task.targets.shape == task.driving.shape == (3, 4, 64, 64, 3)
    np.testing.assert_array_equal(task.sources, np.stack([v.render(0) for v in videos]))
  np.testing.assert_array_equal(same.targets[1], videos[1].read_all()[1:])
  assert cross.pairs == [(videos[0].name, videos[1].name), (videos[1].name, videos[2].name),
                         (videos[2].name, videos[0].name)]
  # Person 2 driven by person 0: the driving frames are 0's, the target 2 in 0's poses.
  np.testing.assert_array_equal(cross.driving[2], videos[0].read_all()[1:])
  from mcc_jax.data_pipelines.sources.synthetic import heads  # pylint: disable=import-outside-toplevel
  expected = heads.render_head(videos[2].identity, videos[0].motion.pose(3), 64)
  np.testing.assert_array_equal(cross.targets[2, 2], expected)
  assert not np.array_equal(relative.targets, cross.targets)


def test_baselines_against_numpy(bench, tiny_checkpoint):
  from mcc_jax import inference  # pylint: disable=import-outside-toplevel
  videos = bench.heldout_videos(_heads().datasets, 2, 4)
  _, cross, _ = bench.build_tasks(videos)
  scorer = bench.Scorer()
  copy = scorer(bench.copy_source(cross), cross.targets)
  expected = _psnr(np.repeat(cross.sources, 3, axis=0), cross.targets.reshape(6, 64, 64, 3))
  np.testing.assert_allclose(copy["psnr_per_frame"], expected, atol=2e-3)
  assert copy["frames"] == 6 and copy["psnr"] == pytest.approx(expected.mean(), abs=2e-3)
  l1 = np.abs(np.repeat(cross.sources, 3, axis=0).astype(float)
              - cross.targets.reshape(6, 64, 64, 3)).mean() / 255
  assert copy["l1"] == pytest.approx(l1, rel=1e-4)
  assert 0 < copy["lpips"] < 1
  # The keypoint flow of a frame to itself is the identity: the warp returns the source.
  model = inference.load_model(checkpoint=tiny_checkpoint[0])
  animator = inference.Animator(model)
  still = bench.Task("still", False, cross.sources,
                     np.repeat(cross.sources[:, None], 3, axis=1), cross.targets, cross.pairs)
  warped = bench.keypoint_flow(animator, still)
  assert warped.shape == cross.targets.shape
  assert np.abs(warped.astype(int) - still.driving).max() <= 1
  moved = bench.keypoint_flow(animator, cross)
  assert moved.shape == cross.targets.shape


def test_the_json_has_every_task_method_and_frame(bench, tmp_path):
  out = tmp_path / "learn.json"
  assert bench.main(["--minutes", "0", "--identities", "2", "--frames", "3", "--json",
                     str(out), "--grid", str(tmp_path / "grid.png"),
                     "--config.model.variant=baseline"]) == 0
  figures = json.loads(out.read_text())
  assert figures["steps"] == 0 and figures["minutes"] == 0
  assert figures["variant"] == "baseline"
  assert figures["config_args"] == ["--config.model.variant=baseline"]
  assert set(figures["heldout"]) == {"same_identity", "cross_identity",
                                     "cross_identity_relative"}
  for task, methods in figures["heldout"].items():
    assert set(methods) == {"mcc_jax", "copy_source", "keypoint_flow", "self_driven"}, task
    for scores in methods.values():
      assert scores["frames"] == 4 and len(scores["psnr_per_frame"]) == 4
      assert 3 < scores["psnr"] < 100 and 0 <= scores["lpips"] < 1.5
      assert abs(np.mean(scores["psnr_per_frame"]) - scores["psnr"]) < 1e-2
  assert figures["pairs"]["cross_identity"] == [
      ["synthetic-test-0000#00", "synthetic-test-0001#00"],
      ["synthetic-test-0001#00", "synthetic-test-0000#00"]]
  assert [point["step"] for point in figures["curve"]] == [0]
  from PIL import Image  # pylint: disable=import-outside-toplevel
  # Two pairs x two frames, five columns, each 64 px shown at twice the size.
  assert Image.open(tmp_path / "grid.png").size == (5 * 128, 4 * 128)
