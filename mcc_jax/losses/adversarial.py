"""Hinge GAN losses and VQGAN's adaptive weight of the generator's adversarial term.

Official arithmetic (``GANLoss`` hinge, ``calculate_adaptive_weight``):

* discriminator: ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``;
* generator: ``-mean(D(fake))``;
* adaptive weight: ``clamp(|dR/dW| / (|dG/dW| + 1e-4), 0, 1)``, stopped, times 0.8, where
  W is the generator's last convolution kernel (decoder ``conv_out``, 64 -> 3), R the
  high-resolution reconstruction loss (L1 + perceptual) and G the generator's hinge loss.

``kernel_gradient`` turns the gradient of a loss with respect to the generated image
into its gradient with respect to W without a backward pass through the generator:
the image is ``conv(h, W) + b`` with h independent of W, so ``dL/dW`` is the correlation
of h with ``dL/dimage``. ``adversarial_image_terms`` uses it to compute the
reconstruction and GAN terms of the generated image, their image gradients and the
weight with one backward pass each, for the training step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from mcc_jax.ops.precision import at_least_float32


def hinge_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array
                             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """``mean(relu(1 - real)) + mean(relu(1 + fake))``; returns (total, {'real', 'fake'})."""
  real = jnp.mean(jax.nn.relu(1.0 - at_least_float32(real_logits)))
  fake = jnp.mean(jax.nn.relu(1.0 + at_least_float32(fake_logits)))
  return real + fake, {"real": real, "fake": fake}


def hinge_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """``-mean(D(fake))``."""
  return -jnp.mean(at_least_float32(fake_logits))


def kernel_gradient(layer_input: jax.Array, output_cotangent: jax.Array,
                    kernel_shape: Sequence[int], padding: int = 1) -> jax.Array:
  """Gradient w.r.t. the kernel of a stride-1 convolution, from its input and output cotangent.

  Args:
    layer_input: (B, H, W, C_in) input h of the convolution.
    output_cotangent: (B, H, W, C_out) gradient of a loss w.r.t. the convolution's output.
    kernel_shape: (k, k, C_in, C_out), HWIO as in
      :class:`~mcc_jax.models.torch_layers.Conv2d`.
    padding: zero padding on each side.

  Returns:
    (k, k, C_in, C_out) gradient, float32 (or float64 for a float64 input).
  """
  h = at_least_float32(layer_input)

  def conv(kernel):
    return jax.lax.conv_general_dilated(
        h, kernel, window_strides=(1, 1), padding=((padding, padding), (padding, padding)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)

  _, pullback = jax.vjp(conv, jnp.zeros(tuple(kernel_shape), h.dtype))
  return pullback(at_least_float32(output_cotangent))[0]


def adaptive_gan_weight_from_gradients(reconstruction_gradient: jax.Array,
                                       gan_gradient: jax.Array, last_layer_input: jax.Array,
                                       kernel_shape: Sequence[int], *, max_weight: float = 1.0,
                                       scale: float = 0.8, eps: float = 1e-4,
                                       padding: int = 1) -> jax.Array:
  """VQGAN's adaptive weight from dR/dimage and dG/dimage (see :func:`adaptive_gan_weight`).

  Args:
    reconstruction_gradient: (B, H, W, 3) gradient of R w.r.t. the generated image.
    gan_gradient: (B, H, W, 3) gradient of G w.r.t. the generated image.
    last_layer_input, kernel_shape, max_weight, scale, eps, padding: as in
      :func:`adaptive_gan_weight`.

  Returns:
    Scalar ``stop_gradient(clip(|dR/dW| / (|dG/dW| + eps), 0, max_weight)) * scale``.
  """
  h = jax.lax.stop_gradient(last_layer_input)
  recon_grad = kernel_gradient(h, jax.lax.stop_gradient(reconstruction_gradient), kernel_shape,
                               padding)
  gan_grad = kernel_gradient(h, jax.lax.stop_gradient(gan_gradient), kernel_shape, padding)
  ratio = jnp.linalg.norm(recon_grad.ravel()) / (jnp.linalg.norm(gan_grad.ravel()) + eps)
  return jax.lax.stop_gradient(jnp.clip(ratio, 0.0, max_weight)) * scale


def adaptive_gan_weight(reconstruction_fn: Callable[[jax.Array], jax.Array],
                        gan_fn: Callable[[jax.Array], jax.Array], image: jax.Array,
                        last_layer_input: jax.Array, kernel_shape: Sequence[int], *,
                        max_weight: float = 1.0, scale: float = 0.8, eps: float = 1e-4,
                        padding: int = 1) -> jax.Array:
  """VQGAN's adaptive weight of the adversarial term, stopped.

  Args:
    reconstruction_fn: generated image -> R (L1 + perceptual of the main output).
    gan_fn: generated image -> G (the generator's hinge loss).
    image: (B, H, W, 3) the generated image (the last convolution's output).
    last_layer_input: (B, H, W, C) the last convolution's input.
    kernel_shape: shape of the last convolution's kernel.
    max_weight: clamp of the ratio (1.0 in the official code).
    scale: factor applied after the clamp (0.8, the official default).
    eps: added to the GAN gradient norm (1e-4 in the official code).
    padding: the last convolution's zero padding (1 for the decoder's 3x3 conv_out).

  Returns:
    Scalar ``stop_gradient(clip(|dR/dW| / (|dG/dW| + eps), 0, max_weight)) * scale``.
  """
  image = jax.lax.stop_gradient(image)
  return adaptive_gan_weight_from_gradients(
      jax.grad(reconstruction_fn)(image), jax.grad(gan_fn)(image), last_layer_input,
      kernel_shape, max_weight=max_weight, scale=scale, eps=eps, padding=padding)


class AdversarialImageTerms(NamedTuple):
  """The main output's image terms with their gradients computed once (see below).

  Attributes:
    terms: ``{'l1', 'perceptual', 'gan', 'adaptive_weight'}``, stopped values (``gan`` is
      ``adaptive_weight * G``).
    gradient_carrier: a scalar that is exactly zero and whose gradient w.r.t. the image is
      ``dR/dimage + adaptive_weight * dG/dimage``: adding it to a total gives that total
      the terms' gradients.
    gan_aux: the auxiliary output of ``gan_fn`` (the discriminator's new statistics).
  """

  terms: dict[str, jax.Array]
  gradient_carrier: jax.Array
  gan_aux: Any


def adversarial_image_terms(reconstruction_terms_fn: Callable[[jax.Array], dict],
                            gan_fn: Callable[[jax.Array], tuple[jax.Array, Any]],
                            image: jax.Array, last_layer_input: jax.Array,
                            kernel_shape: Sequence[int], *, max_weight: float = 1.0,
                            scale: float = 0.8, eps: float = 1e-4,
                            padding: int = 1) -> AdversarialImageTerms:
  """R, the weighted G and the adaptive weight, with one backward pass each through the
  perceptual network and the discriminator.

  The official step differentiates R and G with respect to the last layer for the weight,
  then differentiates the total again, through the perceptual network and the
  discriminator a second time. Here the two image gradients are computed once: they give
  the weight (:func:`adaptive_gan_weight_from_gradients`), and the total's backward pass
  starts from them at the image (``gradient_carrier``). Same function and gradient as
  adding ``R + d * G`` to the total; the perceptual network's activations are freed
  before the generator's backward pass instead of kept for it.

  Args:
    reconstruction_terms_fn: generated image -> dict of terms whose sum is R
      (:func:`~mcc_jax.losses.objective.reconstruction_terms`).
    gan_fn: generated image -> (G, aux): the generator's hinge loss and, e.g., the
      discriminator's new BatchNorm statistics.
    image: (B, H, W, 3) the generated image (the last convolution's output).
    last_layer_input, kernel_shape, max_weight, scale, eps, padding: as in
      :func:`adaptive_gan_weight`.

  Returns:
    :class:`AdversarialImageTerms`.
  """
  stopped = jax.lax.stop_gradient(image)
  reconstruction, reconstruction_pullback = jax.vjp(reconstruction_terms_fn, stopped)
  (reconstruction_gradient,) = reconstruction_pullback(
      jax.tree.map(jnp.ones_like, reconstruction))
  gan, gan_pullback, gan_aux = jax.vjp(gan_fn, stopped, has_aux=True)
  (gan_gradient,) = gan_pullback(jnp.ones_like(gan))
  weight = adaptive_gan_weight_from_gradients(
      reconstruction_gradient, gan_gradient, last_layer_input, kernel_shape,
      max_weight=max_weight, scale=scale, eps=eps, padding=padding)
  image_gradient = jax.lax.stop_gradient(
      at_least_float32(reconstruction_gradient) + weight * at_least_float32(gan_gradient))
  # image - stopped is exactly zero; its product with the gradient adds nothing to a
  # total and hands it image_gradient as the cotangent of the image.
  carrier = jnp.sum(image_gradient * at_least_float32(image - stopped))
  terms = {name: jax.lax.stop_gradient(value) for name, value in reconstruction.items()}
  terms["gan"] = jax.lax.stop_gradient(weight * at_least_float32(gan))
  terms["adaptive_weight"] = weight
  return AdversarialImageTerms(terms, carrier, gan_aux)
