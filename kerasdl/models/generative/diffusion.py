"""Denoising diffusion probabilistic models (Ho, Jain & Abbeel, "Denoising Diffusion
Probabilistic Models", NeurIPS 2020) with DDIM sampling (Song, Meng & Ermon, "Denoising
Diffusion Implicit Models", ICLR 2021).

The forward process adds Gaussian noise over ``T`` steps with variances ``beta_t``; with
``alpha_t = 1 - beta_t`` and ``alpha_bar_t = prod_{s <= t} alpha_s`` it has the closed
form (Ho et al. eq. 4)::

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,     eps ~ N(0, I)

A network ``eps_theta(x_t, t)`` learns to predict ``eps`` by the "simple" loss
``E ||eps - eps_theta(x_t, t)||^2`` (eq. 14), ``t`` uniform, ``x_0`` the data scaled to
[-1, 1]. Sampling runs the chain backwards from ``x_T ~ N(0, I)``:

* ancestral DDPM (Algorithm 2), all ``T`` steps, ``sigma_t^2 = beta_t``::

      x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) + sigma_t z

* DDIM (Song et al. eq. 12) over a subsequence ``tau`` of the steps, ``eta = 0``
  deterministic, ``eta = 1`` the DDPM posterior variance::

      x0_hat  = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)
      sigma   = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s)
      x_s     = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s - sigma^2) eps_theta + sigma z

Timesteps are 0-based here: index ``t`` in ``0 .. T-1`` is the paper's ``t + 1``, and
``alpha_bar`` "before step 0" is 1 (the clean data).

Schedules: linear ``beta`` from 1e-4 to 0.02 over T = 1000 (Ho et al. section 4) and the
cosine schedule of Nichol & Dhariwal ("Improved Denoising Diffusion Probabilistic
Models", ICML 2021, eq. 17), ``alpha_bar(t) = f(t) / f(0)``, ``f(t) = cos^2(pi/2 (t/T +
s) / (1 + s))``, ``s = 0.008``, betas clipped at 0.999.

The noise predictor is a small U-Net in the style of Ho et al. (appendix B, after
PixelCNN++ and the Wide ResNet): a sinusoidal embedding of ``t`` through a two-layer
swish MLP, residual blocks (GroupNorm, swish, 3x3 convolution; the time embedding added
between the two convolutions), stride-2 convolutions down and nearest-neighbour
upsampling + convolution up, with skip connections concatenated, and one self-attention
block (``keras.layers.MultiHeadAttention`` over the flattened positions) at the lowest
resolution. Two halvings take 28x28 to 7x7 and 32x32 to 8x8, so MNIST-sized images need
no padding: each side must divide by ``2 ** (len(channel_mults) - 1)``.

Sampling cost: one network evaluation per step, so DDPM costs ``T`` (1000) evaluations
and DDIM ``steps`` (50 by default): DDIM is ~20 times faster (64 images from the
default 28x28 model on a shared 2-core CPU, TensorFlow: DDIM 34 s, DDPM 641 s; both
grow linearly with the number of images). The loops run eagerly in
numpy; the network runs through ``predict_on_batch``, which compiles it once (a
``tf.function`` on TensorFlow, ``jax.jit`` on JAX) for a given number of images.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kerasdl.errors import KerasdlError, check_choice, check_positive_int
from kerasdl.layers.positions import sinusoidal_encoding
from kerasdl.registry import InputDecl, register_model
from kerasdl.train.recipes import Recipe

__all__ = [
    "DDPM",
    "NoiseSchedule",
    "SCHEDULES",
    "SAMPLERS",
    "TimestepEmbedding",
    "build_ddpm",
    "build_unet",
    "cosine_alpha_bar",
    "cosine_beta_schedule",
    "ddim_sample",
    "ddim_step",
    "ddim_timesteps",
    "ddpm_sample",
    "ddpm_step",
    "denoising_loss",
    "linear_beta_schedule",
    "unet_count",
]

PAPER = ("Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models, NeurIPS 2020; "
         "Song, Meng & Ermon, Denoising Diffusion Implicit Models, ICLR 2021")
SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")


# ---------------------------------------------------------------------------- schedules


def linear_beta_schedule(timesteps=1000, beta_start=1e-4, beta_end=0.02):
    """``[timesteps]`` float64 betas rising linearly (Ho et al. 2020, section 4). The
    endpoints are the paper's for T = 1000 and kept as given for other T."""
    check_positive_int(timesteps, "timesteps")
    if not 0.0 < beta_start <= beta_end < 1.0:
        raise KerasdlError(f"need 0 < beta_start <= beta_end < 1, got beta_start="
                           f"{beta_start!r}, beta_end={beta_end!r}", argument="beta_start")
    return np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)


def cosine_alpha_bar(t, timesteps, s=0.008):
    """Nichol & Dhariwal's ``f(t) / f(0)`` at (float) step ``t`` of ``timesteps``."""
    def f(u):
        return np.cos((np.asarray(u, np.float64) / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    return f(t) / f(0)


def cosine_beta_schedule(timesteps=1000, s=0.008, max_beta=0.999):
    """``[timesteps]`` float64 betas of the cosine schedule (Nichol & Dhariwal 2021,
    eq. 17): ``beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1)``, clipped at ``max_beta``
    because ``alpha_bar(T)`` is ~0 and the last ratio would make ``beta_T = 1``."""
    check_positive_int(timesteps, "timesteps")
    steps = np.arange(timesteps + 1, dtype=np.float64)
    alpha_bar = cosine_alpha_bar(steps, timesteps, s)
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


class NoiseSchedule:
    """A variance schedule and the quantities derived from it, float64 numpy arrays of
    length ``timesteps``: ``betas``, ``alphas = 1 - betas``, ``alpha_bar`` (their
    running product) and ``alpha_bar_prev`` (shifted right, 1 first)."""

    def __init__(self, name="linear", timesteps=1000):
        self.name = check_choice(name, SCHEDULES, "schedule")
        self.timesteps = check_positive_int(timesteps, "timesteps")
        if self.timesteps < 2:
            raise KerasdlError(f"timesteps must be at least 2, got {timesteps!r}",
                               argument="timesteps")
        make = linear_beta_schedule if name == "linear" else cosine_beta_schedule
        self.betas = make(self.timesteps)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = np.cumprod(self.alphas)
        self.alpha_bar_prev = np.concatenate([[1.0], self.alpha_bar[:-1]])
        # The training graph gathers from these float32 copies.
        self._sqrt_alpha_bar = np.sqrt(self.alpha_bar).astype("float32")
        self._sqrt_one_minus = np.sqrt(1.0 - self.alpha_bar).astype("float32")

    def __repr__(self):
        return f"NoiseSchedule({self.name!r}, timesteps={self.timesteps})"

    def q_sample(self, x0, t, noise):
        """``x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise`` (Ho et al. eq. 4)
        for a batch ``x0`` [batch, ...], integer steps ``t`` [batch] and ``noise`` like
        ``x0``; ``keras.ops``, so it runs inside a traced training step."""
        x0 = ops.convert_to_tensor(x0)
        t = ops.cast(t, "int32")
        broadcast = (-1,) + (1,) * (len(x0.shape) - 1)
        a = ops.reshape(ops.take(self._sqrt_alpha_bar, t, axis=0), broadcast)
        b = ops.reshape(ops.take(self._sqrt_one_minus, t, axis=0), broadcast)
        return ops.cast(a, x0.dtype) * x0 + ops.cast(b, x0.dtype) * ops.cast(noise, x0.dtype)

    def posterior_mean(self, x0, x_t, t):
        """Mean of ``q(x_{t-1} | x_t, x_0)`` (Ho et al. eq. 7), numpy, scalar ``t``."""
        ab, ab_prev, beta = self.alpha_bar[t], self.alpha_bar_prev[t], self.betas[t]
        return (math.sqrt(ab_prev) * beta / (1 - ab) * np.asarray(x0)
                + math.sqrt(self.alphas[t]) * (1 - ab_prev) / (1 - ab) * np.asarray(x_t))

    def posterior_variance(self, t):
        """``beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t`` (eq. 7)."""
        return (1 - self.alpha_bar_prev[t]) / (1 - self.alpha_bar[t]) * self.betas[t]


# ---------------------------------------------------------------------------- sampling


def ddpm_step(schedule, x_t, t, eps, noise):
    """One ancestral step ``x_t -> x_{t-1}`` (Ho et al. Algorithm 2, ``sigma_t^2 =
    beta_t``), numpy; no noise is added at ``t = 0``."""
    beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bar[t]
    mean = (x_t - beta / math.sqrt(1.0 - ab) * eps) / math.sqrt(alpha)
    return mean + math.sqrt(beta) * noise if t > 0 else mean


def ddim_step(schedule, x_t, t, t_prev, eps, eta=0.0, noise=None):
    """One DDIM step ``x_t -> x_{t_prev}`` (Song et al. eq. 12), numpy; ``t_prev = -1``
    means the clean data (``alpha_bar = 1``)."""
    ab = schedule.alpha_bar[t]
    ab_prev = 1.0 if t_prev < 0 else schedule.alpha_bar[t_prev]
    x0_hat = (x_t - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)
    sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab)) * math.sqrt(1.0 - ab / ab_prev)
    # max(.., 0): at eta = 1 and t_prev = -1 rounding can make the difference -1e-17.
    direction = math.sqrt(max(1.0 - ab_prev - sigma ** 2, 0.0)) * eps
    out = math.sqrt(ab_prev) * x0_hat + direction
    if sigma > 0:
        out = out + sigma * noise
    return out


def ddim_timesteps(timesteps, steps):
    """``steps`` increasing step indices from 0 to ``timesteps - 1``, evenly spaced
    (Song et al.'s "linear" subsequence, ending on the last step)."""
    check_positive_int(steps, "steps")
    if steps > timesteps:
        raise KerasdlError(f"steps must be at most the {timesteps} timesteps, got {steps}",
                           argument="steps")
    if steps == 1:
        return np.array([timesteps - 1])
    return np.round(np.linspace(0, timesteps - 1, steps)).astype(int)


def _check_predict(predict):
    if not callable(predict):
        raise KerasdlError(f"predict must be callable (x_t, t) -> noise, got {predict!r}",
                           argument="predict")


def ddpm_sample(predict, schedule, shape, seed=0):
    """Ancestral sampling over all ``schedule.timesteps`` steps from ``x_T ~ N(0, I)``
    of ``shape``; ``predict(x_t, t)`` gives the predicted noise for a float32 batch and
    an int step. Returns float64 numpy ``x_0`` (not clipped)."""
    _check_predict(predict)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    for t in range(schedule.timesteps - 1, -1, -1):
        eps = np.asarray(predict(x.astype("float32"), t), np.float64)
        noise = rng.standard_normal(shape) if t > 0 else None
        x = ddpm_step(schedule, x, t, eps, noise)
    return x


def ddim_sample(predict, schedule, shape, steps=50, eta=0.0, seed=0):
    """DDIM sampling over :func:`ddim_timesteps` (``steps`` network evaluations) from
    ``x_T ~ N(0, I)``; ``eta = 0`` is deterministic given ``x_T``. Returns float64
    numpy ``x_0`` (not clipped)."""
    _check_predict(predict)
    if not (isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta >= 0):
        raise KerasdlError(f"eta must be a number >= 0, got {eta!r}", argument="eta")
    tau = ddim_timesteps(schedule.timesteps, steps)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    for i in range(len(tau) - 1, -1, -1):
        t, t_prev = int(tau[i]), int(tau[i - 1]) if i > 0 else -1
        eps = np.asarray(predict(x.astype("float32"), t), np.float64)
        noise = rng.standard_normal(shape) if eta > 0 else None
        x = ddim_step(schedule, x, t, t_prev, eps, eta, noise)
    return x


# ---------------------------------------------------------------------------- network


@keras.saving.register_keras_serializable(package="kerasdl")
class TimestepEmbedding(keras.layers.Layer):
    """Integer steps ``t`` [batch] -> row ``t`` of :func:`sinusoidal_encoding`
    (``num_timesteps`` x ``depth``), the transformer's position encoding used for time
    as in Ho et al. 2020; no weights. Steps are cast to int32 (a float step is
    truncated)."""

    def __init__(self, num_timesteps, depth, **kwargs):
        super().__init__(**kwargs)
        self.num_timesteps = check_positive_int(num_timesteps, "num_timesteps")
        self.depth = check_positive_int(depth, "depth")

    def call(self, t):
        table = sinusoidal_encoding(self.num_timesteps, self.depth, dtype=self.compute_dtype)
        return ops.take(table, ops.cast(t, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "num_timesteps": self.num_timesteps,
                "depth": self.depth}


def _res_block(x, time, filters, groups, name):
    h = keras.layers.GroupNormalization(groups, name=f"{name}_norm1")(x)
    h = keras.layers.Activation("swish", name=f"{name}_act1")(h)
    h = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(h)
    # Each block projects the (shared, already swish-ed) time embedding to its own
    # channels and adds it at every position.
    shift = keras.layers.Dense(filters, name=f"{name}_time")(time)
    shift = keras.layers.Reshape((1, 1, filters), name=f"{name}_time_map")(shift)
    h = keras.layers.Add(name=f"{name}_add_time")([h, shift])
    h = keras.layers.GroupNormalization(groups, name=f"{name}_norm2")(h)
    h = keras.layers.Activation("swish", name=f"{name}_act2")(h)
    h = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(h)
    if x.shape[-1] != filters:
        x = keras.layers.Conv2D(filters, 1, name=f"{name}_skip")(x)
    return keras.layers.Add(name=f"{name}_out")([x, h])


def _attention_block(x, groups, num_heads, name):
    height, width, channels = x.shape[1:]
    h = keras.layers.GroupNormalization(groups, name=f"{name}_norm")(x)
    h = keras.layers.Reshape((height * width, channels), name=f"{name}_flatten")(h)
    h = keras.layers.MultiHeadAttention(num_heads, channels // num_heads,
                                        name=f"{name}_mha")(h, h)
    h = keras.layers.Reshape((height, width, channels), name=f"{name}_unflatten")(h)
    return keras.layers.Add(name=f"{name}_out")([x, h])


def _check_unet(input_shape, channels, channel_mults, num_res_blocks, groups, num_heads,
                timesteps):
    check_positive_int(channels, "channels")
    check_positive_int(num_res_blocks, "num_res_blocks")
    check_positive_int(groups, "groups")
    check_positive_int(num_heads, "num_heads")
    check_positive_int(timesteps, "timesteps")
    if not (isinstance(channel_mults, (tuple, list)) and channel_mults
            and all(isinstance(m, int) and not isinstance(m, bool) and m > 0
                    for m in channel_mults)):
        raise KerasdlError(f"channel_mults must be a non-empty sequence of positive ints, "
                           f"got {channel_mults!r}", argument="channel_mults")
    widths = [channels] + [channels * m for m in channel_mults]
    if any(w % groups for w in widths):
        raise KerasdlError(f"groups={groups} must divide every width {sorted(set(widths))} "
                           f"(channels times each of channel_mults)", argument="groups")
    if widths[-1] % num_heads:
        raise KerasdlError(f"num_heads={num_heads} must divide the lowest resolution's "
                           f"{widths[-1]} channels", argument="num_heads")
    multiple = 2 ** (len(channel_mults) - 1)
    ok = (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
          and all(isinstance(d, int) and d > 0 for d in input_shape))
    if not ok or input_shape[0] % multiple or input_shape[1] % multiple:
        raise KerasdlError(
            f"input_shape must be (height, width, channels) with height and width divisible "
            f"by {multiple} (the U-Net halves them {len(channel_mults) - 1} times), got "
            f"{input_shape!r}", argument="input_shape")
    return tuple(int(d) for d in input_shape)


def build_unet(input_shape=(28, 28, 1), channels=32, channel_mults=(1, 2, 2),
               num_res_blocks=1, groups=8, num_heads=4, timesteps=1000, name="unet"):
    """The noise predictor ``[x_t, t] -> eps``: ``x_t`` [batch, H, W, C] in the model's
    [-1, 1] units (noisy, so unbounded), ``t`` [batch] int32 in ``0 .. timesteps - 1``.

    ``channels`` is the first level's width and the sinusoid's depth; the time MLP is
    ``4 * channels`` wide. Level ``i`` has width ``channels * channel_mults[i]`` and
    ``num_res_blocks`` residual blocks going down, ``num_res_blocks + 1`` coming up (each
    eating one skip), and levels are joined by a halving / doubling of the sides. The
    middle is residual block, self-attention, residual block. Unlike Ho et al., no
    layer starts at zero (they zero the last convolution of each block and of the
    output), so that one training step reaches every weight.
    """
    input_shape = _check_unet(input_shape, channels, channel_mults, num_res_blocks, groups,
                              num_heads, timesteps)
    levels = len(channel_mults)
    noisy = keras.Input(input_shape, name="noisy_images")
    steps = keras.Input((), dtype="int32", name="timesteps")

    time = TimestepEmbedding(timesteps, channels, name="time_embedding")(steps)
    time = keras.layers.Dense(4 * channels, activation="swish", name="time_dense1")(time)
    time = keras.layers.Dense(4 * channels, name="time_dense2")(time)
    time = keras.layers.Activation("swish", name="time_act")(time)

    x = keras.layers.Conv2D(channels, 3, padding="same", name="conv_in")(noisy)
    skips = [x]
    for i, mult in enumerate(channel_mults):
        for j in range(num_res_blocks):
            x = _res_block(x, time, channels * mult, groups, f"down{i}_block{j}")
            skips.append(x)
        if i < levels - 1:
            x = keras.layers.Conv2D(x.shape[-1], 3, strides=2, padding="same",
                                    name=f"down{i}_downsample")(x)
            skips.append(x)

    width = channels * channel_mults[-1]
    x = _res_block(x, time, width, groups, "middle_block0")
    x = _attention_block(x, groups, num_heads, "middle_attention")
    x = _res_block(x, time, width, groups, "middle_block1")

    for i in reversed(range(levels)):
        for j in range(num_res_blocks + 1):
            x = keras.layers.Concatenate(name=f"up{i}_concat{j}")([x, skips.pop()])
            x = _res_block(x, time, channels * channel_mults[i], groups, f"up{i}_block{j}")
        if i > 0:
            x = keras.layers.UpSampling2D(2, interpolation="nearest",
                                          name=f"up{i}_upsample")(x)
            x = keras.layers.Conv2D(x.shape[-1], 3, padding="same", name=f"up{i}_conv")(x)

    x = keras.layers.GroupNormalization(groups, name="out_norm")(x)
    x = keras.layers.Activation("swish", name="out_act")(x)
    eps = keras.layers.Conv2D(input_shape[-1], 3, padding="same", name="noise")(x)
    return keras.Model([noisy, steps], eps, name=name)


def unet_count(input_channels=1, channels=32, channel_mults=(1, 2, 2), num_res_blocks=1):
    """Parameters of :func:`build_unet`, from these formulas (``k x k`` convolution
    ``cin -> cout``: ``k^2 cin cout + cout``; GroupNorm of ``c``: ``2c``; time width
    ``d = 4 * channels``)::

        time MLP        (channels d + d) + (d d + d)
        residual block  2 cin + conv3(cin, cout) + (d cout + cout) + 2 cout
                        + conv3(cout, cout) [+ conv1(cin, cout) when cin != cout]
        attention (c)   2c + 4 (c c + c)       (query, key, value, output projections)
        down / up       conv3(c, c)
        ends            conv3(C, channels) in; 2 channels + conv3(channels, C) out

    walking the skips as the builder does (the up path's blocks take the running width
    plus the skip's)."""
    d = 4 * channels

    def conv(k, cin, cout):
        return k * k * cin * cout + cout

    def res(cin, cout):
        return (2 * cin + conv(3, cin, cout) + d * cout + cout + 2 * cout
                + conv(3, cout, cout) + (conv(1, cin, cout) if cin != cout else 0))

    total = (channels * d + d) + (d * d + d) + conv(3, input_channels, channels)
    width, skips = channels, [channels]
    for i, mult in enumerate(channel_mults):
        for _ in range(num_res_blocks):
            total += res(width, channels * mult)
            width = channels * mult
            skips.append(width)
        if i < len(channel_mults) - 1:
            total += conv(3, width, width)
            skips.append(width)
    total += 2 * res(width, width) + 2 * width + 4 * (width * width + width)
    for i in reversed(range(len(channel_mults))):
        for _ in range(num_res_blocks + 1):
            total += res(width + skips.pop(), channels * channel_mults[i])
            width = channels * channel_mults[i]
        if i > 0:
            total += conv(3, width, width)
    return total + 2 * width + conv(3, width, input_channels)


# ---------------------------------------------------------------------------- model


def _time_embedding_of(unet):
    for layer in unet.layers:
        if isinstance(layer, TimestepEmbedding):
            return layer
    raise KerasdlError("unet must embed its timesteps with a TimestepEmbedding layer "
                       "(build it with build_unet)", argument="unet")


@keras.saving.register_keras_serializable(package="kerasdl")
class DDPM(keras.Model):
    """A DDPM around a functional noise predictor ``unet`` (``[x_t, t] -> eps``,
    :func:`build_unet`), trained on raw-pixel images in [0, 255] alone by ``fit`` with
    the simple loss (Ho et al. eq. 14), tracked as ``loss``. The data are scaled to
    [-1, 1]; ``t`` and the noise come from a seeded ``keras.random.SeedGenerator``.

    ``call(images)`` (and ``predict``) is deterministic: the predicted noise of the
    images, scaled to [-1, 1], read as ``x_t`` at the fixed step ``call_timestep``
    (default ``timesteps // 2``). It exists for Keras' training step and the model
    contract; the sampler and exports use ``unet`` directly. :meth:`generate` samples
    with ``sampler`` (``"ddim"``, ``sampling_steps`` steps, unless told otherwise)."""

    def __init__(self, unet, schedule="linear", timesteps=1000, call_timestep=None,
                 sampler="ddim", sampling_steps=50, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.unet = unet
        self.schedule = NoiseSchedule(schedule, timesteps)
        self.timesteps = self.schedule.timesteps
        embedded = _time_embedding_of(unet).num_timesteps
        if embedded != self.timesteps:
            raise KerasdlError(f"unet embeds {embedded} timesteps but timesteps="
                               f"{self.timesteps}", argument="timesteps")
        if call_timestep is None:
            call_timestep = self.timesteps // 2
        if not (isinstance(call_timestep, int) and 0 <= call_timestep < self.timesteps):
            raise KerasdlError(f"call_timestep must be an int in [0, {self.timesteps}), got "
                               f"{call_timestep!r}", argument="call_timestep")
        self.call_timestep = call_timestep
        self.sampler = check_choice(sampler, SAMPLERS, "sampler")
        if not (isinstance(sampling_steps, int) and 1 <= sampling_steps <= self.timesteps):
            raise KerasdlError(f"sampling_steps must be an int in [1, {self.timesteps}] (DDIM "
                               f"steps), got {sampling_steps!r}", argument="sampling_steps")
        self.sampling_steps = sampling_steps
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # The wrapper takes raw pixels, not the unet's x_t: same shape, its own input.
        self._images = keras.Input(unet.inputs[0].shape[1:], name="images")

    @property
    def inputs(self):
        return [self._images]

    @property
    def metrics(self):
        return [self.loss_tracker]

    def scale(self, images):
        """Raw pixels [0, 255] -> the model's [-1, 1]."""
        return ops.cast(images, self.compute_dtype) / 127.5 - 1.0

    def call(self, images, training=False):
        x = self.scale(images)
        t = ops.full((ops.shape(x)[0],), self.call_timestep, dtype="int32")
        return self.unet([x, t], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The loss needs a random t and noise per image, so it runs the unet itself
        # rather than using y_pred (call()'s fixed-step output, which the compiled
        # step discards as unused).
        x0 = self.scale(x)
        n = ops.shape(x0)[0]
        t = keras.random.randint((n,), 0, self.timesteps, dtype="int32",
                                 seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x0), dtype=x0.dtype, seed=self.seed_generator)
        predicted = self.unet([self.schedule.q_sample(x0, t, noise), t], training=training)
        loss = ops.mean(ops.square(ops.cast(predicted, noise.dtype) - noise))
        self.loss_tracker.update_state(loss)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return self.get_metrics_result()

    def predict_noise(self, x_t, t):
        """The unet's noise prediction for a float32 numpy batch ``x_t`` (model units) at
        one int step ``t``, as numpy; compiled once per batch size."""
        steps = np.full((len(x_t),), t, dtype="int32")
        return keras.ops.convert_to_numpy(self.unet.predict_on_batch([x_t, steps]))

    def generate(self, n, labels=None, seed=None, steps=None, method=None, eta=0.0):
        """``n`` images in [0, 1], [n, H, W, C] float32 numpy, sampled from
        ``x_T ~ N(0, I)`` drawn with numpy seed ``seed`` (default: the model's), so the
        same seed gives the same images on every backend. ``method`` ``"ddpm"``
        (ancestral, all ``timesteps`` network evaluations; ``steps`` must be None) or
        ``"ddim"`` (``steps`` evaluations, default ``sampling_steps``; ``eta`` 0 is
        deterministic, 1 adds the DDPM posterior's noise); default ``sampler``.
        ``labels`` must be None: the model is unconditional."""
        check_positive_int(n, "n")
        if labels is not None:
            raise KerasdlError("a DDPM is unconditional; generate() takes no labels",
                               argument="labels")
        method = check_choice(self.sampler if method is None else method, SAMPLERS, "method")
        if not (isinstance(eta, (int, float)) and not isinstance(eta, bool) and eta >= 0):
            raise KerasdlError(f"eta must be a number >= 0, got {eta!r}", argument="eta")
        seed = self.seed if seed is None else seed
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise KerasdlError(f"seed must be an int >= 0, got {seed!r}", argument="seed")
        shape = (n,) + tuple(self._images.shape[1:])
        if method == "ddpm":
            if steps is not None:
                raise KerasdlError("method='ddpm' runs all timesteps; steps applies to "
                                   "method='ddim'", argument="steps")
            if eta:
                raise KerasdlError("eta applies to method='ddim' (ancestral DDPM uses "
                                   "sigma_t^2 = beta_t)", argument="eta")
            x = ddpm_sample(self.predict_noise, self.schedule, shape, seed)
        else:
            steps = self.sampling_steps if steps is None else steps
            x = ddim_sample(self.predict_noise, self.schedule, shape, steps, eta, seed)
        return ((np.clip(x, -1.0, 1.0) + 1.0) / 2.0).astype("float32")

    def get_config(self):
        return {**super().get_config(),
                "unet": keras.saving.serialize_keras_object(self.unet),
                "schedule": self.schedule.name, "timesteps": self.timesteps,
                "call_timestep": self.call_timestep, "sampler": self.sampler,
                "sampling_steps": self.sampling_steps, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["unet"] = keras.saving.deserialize_keras_object(config["unet"])
        return cls(**config)


def denoising_loss(model, images, batch_size=256, seed=0):
    """The simple loss (Ho et al. eq. 14) of a :class:`DDPM` on raw-pixel ``images``,
    mean squared error per pixel, with ``t`` and the noise drawn by numpy ``seed``
    (the same draws at every call and on every backend): a held-out loss for
    evaluation."""
    check_positive_int(batch_size, "batch_size")
    rng = np.random.default_rng(seed)
    schedule, total, count = model.schedule, 0.0, 0
    for start in range(0, len(images), batch_size):
        x0 = np.asarray(images[start:start + batch_size], np.float32) / 127.5 - 1.0
        t = rng.integers(0, schedule.timesteps, size=len(x0))
        noise = rng.standard_normal(x0.shape).astype("float32")
        x_t = keras.ops.convert_to_numpy(schedule.q_sample(x0, t, noise))
        eps = keras.ops.convert_to_numpy(
            model.unet.predict_on_batch([x_t, t.astype("int32")]))
        total += float(np.square(eps - noise).sum())
        count += noise.size
    return total / count


# ---------------------------------------------------------------------------- registry


def build_ddpm(input_shape=(28, 28, 1), channels=32, channel_mults=(1, 2, 2),
               num_res_blocks=1, groups=8, num_heads=4, schedule="linear", timesteps=1000,
               sampler="ddim", sampling_steps=50, seed=0, name="ddpm"):
    """A :class:`DDPM` around :func:`build_unet`, built."""
    # The model's own arguments are checked before the (slower) network is built.
    NoiseSchedule(schedule, timesteps)
    check_choice(sampler, SAMPLERS, "sampler")
    unet = build_unet(input_shape, channels, channel_mults, num_res_blocks, groups,
                      num_heads, timesteps, name=f"{name}_unet")
    model = DDPM(unet, schedule=schedule, timesteps=timesteps, sampler=sampler,
                 sampling_steps=sampling_steps, seed=seed, name=name)
    model(ops.zeros((1,) + tuple(input_shape)))
    return model


# Ho et al.: Adam 2e-4 (CIFAR-10), batch 128, 5,000 warm-up steps, gradient norm clipped
# at 1, EMA of the weights with decay 0.9999. On a CPU budget of 10 epochs (~4,200
# steps) 0.9999 would still weigh the random initialisation by ~0.66, so 0.999 (0.015).
_RECIPE = Recipe(
    optimizer="adam", learning_rate=2e-4, schedule="cosine", warmup_epochs=1.0, epochs=10,
    batch_size=128, gradient_clipping="global_norm", clip_threshold=1.0,
    ema_momentum=0.999, validation_fraction=0.1,
    notes="Ho et al. 2020: Adam 2e-4, batch 128, gradient norm clipped at 1, weight EMA "
          "(here 0.999, not 0.9999, for a 10-epoch CPU run); one warm-up epoch (~420 "
          "steps; the paper 5,000) then cosine decay, where the paper kept the rate "
          "constant")


@register_model(
    "ddpm_unet",
    family="generative",
    task="generation",
    paper=PAPER,
    reference_params={
        "formula count (unet_count: time MLP 32->128->128; conv in; widths 32/64/64, one "
        "residual block down and two up per level, attention at 7x7 in the middle; conv "
        "out) at 28x28x1": unet_count(1, 32, (1, 2, 2), 1)},
    test_kwargs={"input_shape": (8, 8, 1), "channels": 4, "channel_mults": (1, 2),
                 "groups": 2, "num_heads": 2, "timesteps": 10, "sampling_steps": 3},
    inputs=(InputDecl("float", 0.0, 255.0),),
    output_shape=(None, None, None),
    target="self",
    default_dataset="fashion_mnist",
    recipe=_RECIPE,
    tags=("image", "diffusion"),
    description="DDPM with a small U-Net noise predictor (T = 1000, linear schedule; "
                "DDIM or ancestral sampling)",
)
def ddpm_unet(input_shape=(28, 28, 1), channels=32, channel_mults=(1, 2, 2),
              num_res_blocks=1, groups=8, num_heads=4, schedule="linear", timesteps=1000,
              sampler="ddim", sampling_steps=50, seed=0, name="ddpm_unet"):
    """DDPM (:class:`DDPM`, :func:`build_unet`) for 28x28 grey or 32x32 colour images;
    ``schedule="cosine"`` for Nichol & Dhariwal's schedule."""
    return build_ddpm(input_shape, channels, channel_mults, num_res_blocks, groups,
                      num_heads, schedule, timesteps, sampler, sampling_steps, seed, name)
