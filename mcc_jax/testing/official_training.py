"""Runs one official training step (``optimize_parameters``) from a user's checkout.

For the training parity tool and the training-step benchmark only. The official model
file, its loss classes and its VGG19 are executed from the checkout at run time (nothing
of them is copied here), with light stand-ins for what they import but the step never
uses (OpenCV, lpips, flow_vis, the registries' builders, the training loop's base class)
and for two things this machine cannot provide:

* torchvision's pretrained VGG19 (a download): a stand-in ``torchvision.models.vgg19``
  returns torchvision's architecture (same layer indices) with random weights;
* CUDA: ``KPDistanceLoss`` calls ``.cuda()``; on a CPU-only torch that call returns the
  tensor unchanged while the step runs.

The model object is built without its constructor (which needs the options machinery
and DDP): its networks, losses and optimisers are set as the official options/train.yml
configures them. Networks are wrapped in a small module with a ``.module`` attribute, as
DDP would wrap them, since the step reaches ``.module.kp_detector`` and
``.module.generator``.
"""

from __future__ import annotations

import contextlib
import copy
import pathlib
import sys
import types
from collections import OrderedDict
from typing import Any

import yaml


from mcc_jax.testing import official_code
from mcc_jax.testing.goldens import VGG19_FEATURES  # torchvision's layout


def random_vgg19(torch, seed: int = 0):
  """torchvision's vgg19() architecture (features with the same indices), random weights."""
  from torch import nn  # pylint: disable=import-outside-toplevel
  torch.manual_seed(seed)
  layers, channels = [], 3
  for entry in VGG19_FEATURES:
    if entry == "M":
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=True)]
      channels = entry
  model = nn.Module()
  model.features = nn.Sequential(*layers)
  return model


def _module(name: str, **attributes) -> types.ModuleType:
  module = types.ModuleType(name)
  module.__dict__.update(attributes)
  sys.modules[name] = module
  return module


class _Wrapped:
  """What DDP would give: ``.module`` is the network; calls go through."""

  def __init__(self, network):
    self.module = network

  def __call__(self, *args, **kwargs):
    return self.module(*args, **kwargs)

  def parameters(self):
    return self.module.parameters()

  def named_parameters(self):
    return self.module.named_parameters()


class OfficialTraining(types.SimpleNamespace):
  """``model_class`` (AppMotionCompModel), ``losses`` module, ``Transform`` and the options."""


def load(repo: str | pathlib.Path, vgg19) -> OfficialTraining:
  """Executes the official loss and model files with stand-ins (see the module docstring).

  Args:
    repo: the official checkout.
    vgg19: the object the stand-in ``torchvision.models.vgg19()`` returns (with ``.features``).
  """
  import torch  # pylint: disable=import-outside-toplevel
  repo = pathlib.Path(repo).expanduser().resolve()
  code = official_code.load(repo)
  unused = lambda *a, **k: (_ for _ in ()).throw(NotImplementedError("not in the stand-in"))
  for name in ("cv2", "lpips", "flow_vis"):
    if name not in sys.modules or name == "lpips":
      _module(name, LPIPS=unused, imread=unused, flow_to_color=unused)
  vision = _module("torchvision")
  models = _module("torchvision.models", vgg19=lambda pretrained=False, **k: vgg19)
  models.vgg = _module("torchvision.models.vgg")
  vision.models = models
  vision.transforms = _module("torchvision.transforms")

  basicsr = sys.modules["basicsr"]
  utils = sys.modules["basicsr.utils"]
  utils.show_feature_map = utils.mimsave = unused
  losses_pkg = official_code._package("basicsr.losses", repo / "basicsr" / "losses")  # pylint: disable=protected-access
  basicsr.losses = losses_pkg
  official_code._exec_file("basicsr.losses.loss_util", repo / "basicsr/losses/loss_util.py")  # pylint: disable=protected-access
  official_code._exec_file("basicsr.archs.vgg_arch", repo / "basicsr/archs/vgg_arch.py")  # pylint: disable=protected-access
  losses = official_code._exec_file("basicsr.losses.losses", repo / "basicsr/losses/losses.py")  # pylint: disable=protected-access
  losses_pkg.build_loss = unused
  sys.modules["basicsr.archs"].build_network = unused
  _module("basicsr.metrics", calculate_metric=unused)
  models_pkg = official_code._package("basicsr.models", repo / "basicsr" / "models")  # pylint: disable=protected-access
  basicsr.models = models_pkg

  class SRModel:  # the training loop's base class: what the step uses of it
    def get_bare_model(self, net):
      return net.module if isinstance(net, _Wrapped) else net

    def model_ema(self, decay=0.999):
      net_g = dict(self.get_bare_model(self.net_g).named_parameters())
      for name, param in self.net_g_ema.named_parameters():
        param.data.mul_(decay).add_(net_g[name].data, alpha=1 - decay)

    def reduce_loss_dict(self, loss_dict):
      with torch.no_grad():
        return OrderedDict((k, v.mean().item()) for k, v in loss_dict.items())

  _module("basicsr.models.sr_model", SRModel=SRModel)
  model_file = official_code._exec_file("basicsr.models.appmotioncomp_model",  # pylint: disable=protected-access
                                        repo / "basicsr/models/appmotioncomp_model.py")
  options = yaml.safe_load((repo / "options" / "train.yml").read_text())
  return OfficialTraining(code=code, losses=losses, model_file=model_file, options=options)


@contextlib.contextmanager
def cpu_cuda_calls(torch):
  """``tensor.cuda()`` returns the tensor (the keypoint-distance loss calls it)."""
  original = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *a, **k: self
  try:
    yield
  finally:
    torch.Tensor.cuda = original


def build_step(official: OfficialTraining, networks: dict[str, Any], torch, dtype):
  """An object whose ``optimize_parameters(iteration)`` is the official step.

  Args:
    official: from :func:`load`.
    networks: ``generator``, ``motion_estimator``, ``discriminator`` official modules
      (moved to ``dtype`` here; their weights are used as they are).
    torch: the torch module.
    dtype: torch.float32 or torch.float64.
  """
  t = official.options["train"]
  losses = official.losses
  model = official.model_file.AppMotionCompModel.__new__(official.model_file.AppMotionCompModel)
  for net in networks.values():
    net.to(dtype).train()
  model.net_g = _Wrapped(networks["generator"])
  model.motion_estimator = _Wrapped(networks["motion_estimator"])
  model.net_d = networks["discriminator"]
  model.net_g_ema = copy.deepcopy(networks["generator"])
  model.device = torch.device("cpu")
  model.opt = {"network_g": official.options["network_g"], "train": t, "dist": False}
  model.ema_decay = t["ema_decay"]
  model.scale_adaptive_gan_weight = 0.8   # the model's default; absent from train.yml
  options = lambda key: {k: v for k, v in t[key].items() if k != "type"}
  model.cri_pix = losses.L1Loss(**options("pixel_opt"))
  model.cri_perceptual = losses.MultiScalePyramidPerceptualLoss(**options("perceptual_opt")).to(dtype)
  model.cri_gan = losses.GANLoss(**options("gan_opt"))
  model.l_weight_motion_codebook_code = t["motion_codebook_code_opt"]["loss_weight"]
  model.cri_motion_codebook_recon = losses.L1Loss(**options("motion_codebook_recon_opt"))
  model.l_weight_app_codebook_code = t["app_codebook_code_opt"]["loss_weight"]
  model.cri_equivariance = losses.EquivarianceLoss(**options("equivariance_opt"))
  model.cri_kp_distancce = losses.KPDistanceLoss(**options("kp_distance_opt"))
  model.l_weight_lr_pixel_perceptual_list = t["lr_pixel_perceptual_opt"]["loss_weight"]
  model.fix_generator = t["fix_generator"]
  model.net_g_start_iter = t["net_g_start_iter"]
  model.net_d_iters = t["net_d_iters"]
  model.net_d_start_iter = t["net_d_start_iter"]
  adam = lambda params, key: torch.optim.Adam(params, lr=t[key]["lr"], betas=tuple(t[key]["betas"]),
                                              weight_decay=t[key].get("weight_decay", 0))
  model.optimizer_g = adam(networks["generator"].parameters(), "optim_g")
  model.optimizer_m = adam(networks["motion_estimator"].parameters(), "optim_motion")
  model.optimizer_d = adam(networks["discriminator"].parameters(), "optim_d")
  return model


@contextlib.contextmanager
def fixed_transform(official: OfficialTraining, theta, control_params, torch, dtype):
  """Replaces the step's random ``Transform`` draws by the given parameters.

  Args:
    theta: (B, 2, 3) affine parameters.
    control_params: (B, 25) TPS weights (the official shape is (B, 1, 25)).
  """
  base = official.model_file.Transform

  class Fixed(base):
    def __init__(self, bs, **kwargs):
      super().__init__(bs, **kwargs)
      self.theta = torch.as_tensor(theta, dtype=dtype)
      self.control_params = torch.as_tensor(control_params, dtype=dtype).view(bs, 1, -1)
      self.control_points = self.control_points.to(dtype)

  official.model_file.Transform = Fixed
  try:
    yield
  finally:
    official.model_file.Transform = base
