"""Hinge losses and the adaptive GAN weight, against numpy and torch autograd."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mcc_jax import losses


def test_hinge_losses_against_numpy():
  rng = np.random.default_rng(0)
  real, fake = rng.normal(size=(2, 3, 3, 1)), rng.normal(size=(2, 3, 3, 1))
  total, parts = losses.hinge_discriminator_loss(real, fake)
  expected_real = np.mean(np.maximum(1 - real, 0))
  expected_fake = np.mean(np.maximum(1 + fake, 0))
  assert float(parts["real"]) == pytest.approx(expected_real, rel=1e-6)
  assert float(parts["fake"]) == pytest.approx(expected_fake, rel=1e-6)
  assert float(total) == pytest.approx(expected_real + expected_fake, rel=1e-6)
  assert float(losses.hinge_generator_loss(fake)) == pytest.approx(-np.mean(fake), rel=1e-6)


def test_kernel_gradient_equals_the_gradient_through_the_convolution():
  rng = np.random.default_rng(1)
  h = jnp.asarray(rng.normal(size=(2, 6, 6, 4)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(3, 3, 4, 3)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)

  def conv(k):
    return jax.lax.conv_general_dilated(h, k, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  loss = lambda image: jnp.mean((image - target)**2 * jnp.tanh(image))
  expected = jax.grad(lambda k: loss(conv(k)))(kernel)
  got = losses.kernel_gradient(h, jax.grad(loss)(conv(kernel)), kernel.shape)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _torch_adaptive_weight(x, w1, w2, target, d_weight):
  """The official formula on a two-layer network, with torch autograd."""
  x = torch.tensor(x, dtype=torch.float64)
  w1 = torch.tensor(w1, dtype=torch.float64)
  w2 = torch.tensor(w2, dtype=torch.float64, requires_grad=True)
  hidden = torch.tanh(x @ w1)
  out = hidden @ w2
  recon = torch.mean(torch.abs(out - torch.tensor(target)))
  gan = -torch.mean(out @ torch.tensor(d_weight))
  g_recon = torch.autograd.grad(recon, w2, retain_graph=True)[0]
  g_gan = torch.autograd.grad(gan, w2, retain_graph=True)[0]
  ratio = torch.norm(g_recon) / (torch.norm(g_gan) + 1e-4)
  return float(torch.clamp(ratio, 0.0, 1.0) * 0.8)


@pytest.mark.parametrize("gan_scale", [1.0, 1e-3])   # ratio below and above the clamp
def test_adaptive_weight_on_a_two_layer_network_matches_the_official_formula(gan_scale):
  rng = np.random.default_rng(2)
  x = rng.normal(size=(5, 4))
  w1, w2 = rng.normal(size=(4, 6)), rng.normal(size=(6, 3))
  target = rng.normal(size=(5, 3))
  d_weight = gan_scale * rng.normal(size=(3,))
  expected = _torch_adaptive_weight(x, w1, w2, target, d_weight)
  # The same network with its last layer as a 1x1 convolution over a (1, 5, 1) "image".
  hidden = jnp.tanh(jnp.asarray(x @ w1, jnp.float32)).reshape(1, 5, 1, 6)
  image = hidden @ jnp.asarray(w2, jnp.float32)
  target = jnp.asarray(target, jnp.float32).reshape(1, 5, 1, 3)
  recon = lambda img: jnp.mean(jnp.abs(img - target))
  gan = lambda img: -jnp.mean(img @ jnp.asarray(d_weight, jnp.float32))
  got = float(losses.adaptive_gan_weight(recon, gan, image, hidden, (1, 1, 6, 3), padding=0))
  assert got == pytest.approx(expected, rel=1e-4)
  if gan_scale < 1:
    assert got == pytest.approx(0.8)   # the ratio is clamped at 1, then times 0.8
  else:
    assert got < 0.8


def test_adaptive_weight_of_a_3x3_output_layer_equals_autodiff_through_it():
  rng = np.random.default_rng(3)
  h = jnp.asarray(rng.normal(size=(2, 8, 8, 4)), jnp.float32)
  kernel = jnp.asarray(0.3 * rng.normal(size=(3, 3, 4, 3)), jnp.float32)
  target = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
  conv = lambda k: jax.lax.conv_general_dilated(h, k, (1, 1), ((1, 1), (1, 1)),
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))
  recon = lambda img: jnp.mean(jnp.abs(img - target))
  gan = lambda img: -jnp.mean(jnp.sin(img))
  g_r = jax.grad(lambda k: recon(conv(k)))(kernel)
  g_g = jax.grad(lambda k: gan(conv(k)))(kernel)
  expected = min(float(jnp.linalg.norm(g_r) / (jnp.linalg.norm(g_g) + 1e-4)), 1.0) * 0.8
  got = losses.adaptive_gan_weight(recon, gan, conv(kernel), h, kernel.shape)
  assert float(got) == pytest.approx(expected, rel=1e-5)
  # Stopped: no gradient flows into the image through the weight.
  assert float(jnp.abs(jax.grad(lambda img: losses.adaptive_gan_weight(
      recon, gan, img, h, kernel.shape))(conv(kernel))).max()) == 0.0
