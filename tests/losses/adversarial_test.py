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
  # A mean (0.07) much smaller than its terms, of inputs rounded to float32: bounded by
  # float32's rounding of the terms, not relative to the small result.
  fake32 = fake.astype(np.float32).astype(np.float64)
  eps32 = float(np.finfo(np.float32).eps)
  assert float(losses.hinge_generator_loss(fake)) == pytest.approx(
      -np.mean(fake32), abs=4 * eps32 * np.abs(fake).mean())


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


def _tiny_generator_and_losses():
  """A two-layer "generator" with a 3x3 output convolution, an L1 + feature loss and a
  small nonlinear "discriminator" (returning an auxiliary output as the real one does)."""
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(2, 8, 8, 5)), jnp.float32)
  params = {"hidden": jnp.asarray(0.5 * rng.normal(size=(5, 4)), jnp.float32),
            "out": jnp.asarray(0.3 * rng.normal(size=(3, 3, 4, 3)), jnp.float32)}
  target = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
  features = jnp.asarray(rng.normal(size=(3, 6)), jnp.float32)
  critic = jnp.asarray(10.0 * rng.normal(size=(3,)), jnp.float32)

  def generate(p):
    hidden = jnp.tanh(x @ p["hidden"])
    image = jax.lax.conv_general_dilated(hidden, p["out"], (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return image, hidden

  def reconstruction_terms(image):
    return {"l1": jnp.mean(jnp.abs(image - target)),
            "perceptual": jnp.mean(jnp.abs(jnp.tanh(image @ features)
                                           - jnp.tanh(target @ features)))}

  def gan(image):
    return -jnp.mean(jnp.sin(image @ critic)), {"mean": jnp.mean(image)}

  return params, generate, reconstruction_terms, gan


def test_adversarial_image_terms_give_the_direct_objective_and_its_gradient():
  params, generate, reconstruction_terms, gan = _tiny_generator_and_losses()
  shape = params["out"].shape

  def direct(p):   # R + stop(d) * G, differentiated through both losses
    image, hidden = generate(p)
    recon = lambda img: sum(reconstruction_terms(img).values())
    weight = losses.adaptive_gan_weight(recon, lambda img: gan(img)[0], image, hidden, shape)
    return recon(image) + weight * gan(image)[0], weight

  def shared(p):
    image, hidden = generate(p)
    image_terms = losses.adversarial_image_terms(reconstruction_terms, gan, image, hidden, shape)
    total = sum(v for k, v in image_terms.terms.items() if k != "adaptive_weight")
    return total + image_terms.gradient_carrier, image_terms

  (expected_total, expected_weight), expected_grads = jax.value_and_grad(
      direct, has_aux=True)(params)
  (total, image_terms), grads = jax.value_and_grad(shared, has_aux=True)(params)
  weight = float(image_terms.terms["adaptive_weight"])
  assert 0.0 < weight < 0.8   # not clamped: the GAN gradient's weight is tested
  assert weight == pytest.approx(float(expected_weight), rel=1e-6)
  assert float(image_terms.gradient_carrier) == 0.0
  assert float(total) == pytest.approx(float(expected_total), rel=1e-6)
  image, _ = generate(params)
  np.testing.assert_allclose(image_terms.terms["gan"], weight * gan(image)[0], rtol=1e-6)
  np.testing.assert_allclose(image_terms.terms["l1"], reconstruction_terms(image)["l1"],
                             rtol=1e-6)
  np.testing.assert_allclose(image_terms.gan_aux["mean"], jnp.mean(image), rtol=1e-6)
  for name in params:
    np.testing.assert_allclose(grads[name], expected_grads[name], rtol=1e-5, atol=1e-7)
  # Without the carrier the total has no gradient at all (every term is stopped).
  no_carrier = jax.grad(lambda p: sum(
      v for k, v in shared(p)[1].terms.items() if k != "adaptive_weight"))(params)
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(no_carrier))


def test_total_generator_loss_refuses_image_terms_with_fake_logits():
  params, generate, reconstruction_terms, gan = _tiny_generator_and_losses()
  image, hidden = generate(params)
  image_terms = losses.adversarial_image_terms(reconstruction_terms, gan, image, hidden,
                                               params["out"].shape)
  with pytest.raises(ValueError, match="image_terms replaces fake_logits"):
    losses.total_generator_loss(None, None, None, None, image, features_fn=None, config=None,
                                fake_logits=jnp.zeros((1,)), image_terms=image_terms)
