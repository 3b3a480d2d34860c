"""Generative adversarial networks: DCGAN (Radford, Metz & Chintala, ICLR 2016), the
conditional GAN (Mirza & Osindero 2014) and WGAN-GP (Gulrajani et al., NeurIPS 2017).

A generator ``G`` maps noise ``z`` to images and a discriminator ``D`` scores images
(Goodfellow et al., NeurIPS 2014). Training alternates a step of ``D``, fed a real batch
and a batch of ``G(z)``, and a step of ``G`` through ``D`` on fresh noise.

Losses, with ``D`` giving a logit:

* GAN (non-saturating, Goodfellow et al. 2014, Sec. 3):
  ``D: -log s(D(x)) - log(1 - s(D(G(z))))``, ``G: -log s(D(G(z)))``, means over the
  batch, ``s`` the sigmoid (written with softplus, which stays finite).
* WGAN-GP: the critic minimises ``E[D(G(z))] - E[D(x)] + lambda * E[(|grad D(x_hat)|_2
  - 1)^2]``, ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]`` per example
  (:func:`gradient_penalty`), and ``G`` minimises ``-E[D(G(z))]``. The paper's defaults
  (its Algorithm 1): ``lambda = 10``, ``n_critic = 5`` critic steps per generator step,
  Adam with learning rate 1e-4, ``beta_1 = 0``, ``beta_2 = 0.9``. No batch
  normalisation in the critic (the penalty is per example; Sec. 4 suggests layer
  normalisation instead).

DCGAN's architecture guidelines (Radford et al., Sec. 3), which :func:`build_generator`
and :func:`build_discriminator` follow:

1. no pooling: strided convolutions in ``D``, fractionally strided (transposed)
   convolutions in ``G``;
2. batch normalisation in both networks, except ``G``'s output layer and ``D``'s input
   layer;
3. no fully connected hidden layers: ``G``'s first layer projects ``z`` to a small
   stack of feature maps, ``D``'s last feature maps are flattened into one logit;
4. ReLU in ``G`` and tanh at its output; LeakyReLU (slope 0.2) in ``D``.

Its training details (Sec. 4): weights drawn from ``N(0, 0.02)``; Adam with learning
rate 2e-4 and ``beta_1 = 0.5`` (0.9 "resulted in training oscillation and
instability"); batch 128; images scaled to tanh's range [-1, 1]; ``z`` uniform.

kerasdl's conventions: the discriminator takes raw pixels in [0, 255] (it scales them to
[-1, 1] itself), so ``model(images)`` and ``model.inputs`` are the discriminator's;
the generator returns tanh images in [-1, 1], which the model maps to pixels before
``D`` sees them; :meth:`GAN.generate` returns images in [0, 1]. The gradient penalty is
taken with respect to the [-1, 1] images, the space in which the unit-norm target is
meant.

Training runs on TensorFlow and JAX (``train_step`` has one version for each); both
optimizers live in one :class:`AdversarialOptimizer`, so the ordinary ``fit`` and
``model.compile(optimizer=...)`` (one optimizer, as ``kerasdl train`` passes) work.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_choice, check_fraction, check_positive_int
from kerasdl.models.generative.autoencoder import check_image_shape
from kerasdl.registry import InputDecl, register_model
from kerasdl.train.recipes import Recipe

PAPER = ("Radford, Metz & Chintala, Unsupervised Representation Learning with Deep "
         "Convolutional Generative Adversarial Networks, ICLR 2016")
CGAN_PAPER = "Mirza & Osindero, Conditional Generative Adversarial Nets, 2014"
WGAN_GP_PAPER = ("Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, Improved Training of "
                 "Wasserstein GANs, NeurIPS 2017")
PRIORS = ("uniform", "normal")
NORMS = ("batch", "layer", "none")
CRITIC_NORMS = ("layer", "none")  # Gulrajani et al. 2017, Sec. 4: no batch norm
TRAINING_BACKENDS = ("tensorflow", "jax")
DCGAN_INIT_STDDEV = 0.02


def _check_training_backend():
    backend = keras.backend.backend()
    if backend not in TRAINING_BACKENDS:
        raise KerasdlError(
            f"GAN training has a train_step for the tensorflow and jax backends only; "
            f"this is {backend!r} (set KERAS_BACKEND=tensorflow or jax)")
    return backend


def input_gradient(fn, x):
    """The gradient of ``sum(fn(x))`` with respect to ``x``, differentiable itself (the
    gradient penalty trains through it), on TensorFlow or JAX."""
    backend = _check_training_backend()
    if backend == "jax":
        import jax

        return jax.grad(lambda v: ops.sum(fn(v)))(x)
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = ops.sum(fn(x))
    return tape.gradient(total, x)


def gradient_penalty(critic, real, fake, epsilon):
    """Gulrajani et al.'s penalty ``mean_i (|grad_x critic(x_hat_i)|_2 - 1)^2`` at
    ``x_hat = epsilon * real + (1 - epsilon) * fake``; ``epsilon`` broadcasts against the
    images (one ``U[0, 1]`` draw per example in training). ``critic`` must score each
    example on its own (no batch normalisation)."""
    x_hat = epsilon * real + (1.0 - epsilon) * fake
    grads = input_gradient(critic, x_hat)
    axes = tuple(range(1, len(grads.shape)))
    # The tiny floor keeps sqrt's derivative finite where a gradient is exactly zero.
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=axes) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


@keras.saving.register_keras_serializable(package="kerasdl")
class AdversarialOptimizer(keras.optimizers.Optimizer):
    """The discriminator's and the generator's optimizers as the one ``model.optimizer``
    that Keras' trainers know.

    Keras holds one optimizer per model, and its JAX trainer carries exactly
    ``model.optimizer.variables`` through the compiled step; listing both optimizers'
    variables here lets a GAN's ``train_step`` update both statelessly. The wrapper
    follows ``keras.optimizers.LossScaleOptimizer``: it owns no update rule, and
    ``learning_rate``, ``iterations`` and ``inner_optimizer`` (which kerasdl's
    learning-rate callbacks look through) are the discriminator's; setting
    ``learning_rate`` sets both. It is built by :meth:`GAN.compile`, which knows which
    variables belong to which network.
    """

    def __init__(self, discriminator_optimizer, generator_optimizer, name=None):
        for value, argument in ((discriminator_optimizer, "discriminator_optimizer"),
                                (generator_optimizer, "generator_optimizer")):
            if not isinstance(value, keras.optimizers.Optimizer):
                raise KerasdlError(f"{argument} must be a keras.optimizers.Optimizer "
                                   f"instance, got {value!r}", argument=argument)
        if discriminator_optimizer is generator_optimizer:
            raise KerasdlError("the two networks need two optimizer objects (each keeps "
                               "its own moments and step count); pass a copy",
                               argument="generator_optimizer")
        super().__init__(learning_rate=0.0, name=name)
        self.discriminator_optimizer = discriminator_optimizer
        self.generator_optimizer = generator_optimizer
        self._num_discriminator_variables = 0

    def build_networks(self, discriminator_variables, generator_variables):
        """Build each optimizer on its network's trainable variables."""
        d_vars, g_vars = list(discriminator_variables), list(generator_variables)
        if not self.discriminator_optimizer.built:
            self.discriminator_optimizer.build(d_vars)
        if not self.generator_optimizer.built:
            self.generator_optimizer.build(g_vars)
        if not self.built:
            self._num_discriminator_variables = len(d_vars)
            super().build(d_vars + g_vars)

    def build(self, variables):
        if not self.built:
            raise ValueError("an AdversarialOptimizer cannot split one list of variables "
                             "between two networks; GAN.compile builds it")

    @property
    def variables(self):
        return (self._variables[:] + self.discriminator_optimizer.variables
                + self.generator_optimizer.variables)

    def split(self, values):
        """``values`` (one per ``variables``) as (own, discriminator's, generator's)."""
        own = len(self._variables)
        middle = own + len(self.discriminator_optimizer.variables)
        values = list(values)
        return values[:own], values[own:middle], values[middle:]

    def apply(self, grads, trainable_variables=None):
        raise ValueError("an AdversarialOptimizer updates each network separately: call "
                         "discriminator_optimizer.apply or generator_optimizer.apply")

    @property
    def inner_optimizer(self):
        return self.discriminator_optimizer

    @property
    def learning_rate(self):
        return self.discriminator_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.discriminator_optimizer.learning_rate = learning_rate
        self.generator_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.discriminator_optimizer.iterations

    def scale_loss(self, loss):
        return loss

    def finalize_variable_values(self, var_list):
        # Each optimizer finalises (e.g. swaps in EMA weights) its own network only.
        k = self._num_discriminator_variables
        self.discriminator_optimizer.finalize_variable_values(self._trainable_variables[:k])
        self.generator_optimizer.finalize_variable_values(self._trainable_variables[k:])

    def get_config(self):
        return {
            "name": self.name,
            "discriminator_optimizer": keras.saving.serialize_keras_object(
                self.discriminator_optimizer),
            "generator_optimizer": keras.saving.serialize_keras_object(
                self.generator_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("discriminator_optimizer", "generator_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects)
        return cls(**config)


@keras.saving.register_keras_serializable(package="kerasdl")
class ImageLayerNormalization(keras.layers.Layer):
    """Layer normalisation of feature maps (Ba, Kiros & Hinton 2016): each example
    normalised over all its positions and channels, then a gain and a bias per channel;
    WGAN-GP's stand-in for batch normalisation in the critic.

    The variance is ``mean((x - mean)^2)`` with the mean differentiated. Keras'
    normalisation layers take their statistics from ``tf.nn.moments`` on TensorFlow,
    which stops the mean's gradient inside the variance: exact for first derivatives
    (the variance's derivative with respect to its mean is zero), but wrong for the
    second derivatives that the gradient penalty trains through (about 1% off on a tiny
    critic, where JAX is exact)."""

    def __init__(self, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(epsilon, (int, float)) and epsilon > 0):
            raise KerasdlError(f"epsilon must be a positive number, got {epsilon!r}",
                               argument="epsilon")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        axes = tuple(range(1, len(x.shape)))
        mean = ops.mean(x, axis=axes, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
        return (x - mean) * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def copy_optimizer(optimizer, **changes):
    """A fresh, unbuilt optimizer of the same class and config (with ``changes``)."""
    return type(optimizer).from_config({**optimizer.get_config(), **changes})


def _check_betas(adam_betas):
    if adam_betas is None or adam_betas == "paper":
        return adam_betas
    if not (isinstance(adam_betas, (tuple, list)) and len(adam_betas) == 2):
        raise KerasdlError(f"adam_betas must be 'paper', None or (beta_1, beta_2), got "
                           f"{adam_betas!r}", argument="adam_betas")
    return tuple(check_fraction(b, "adam_betas") for b in adam_betas)


@keras.saving.register_keras_serializable(package="kerasdl")
class GAN(keras.Model):
    """A GAN around a functional ``generator`` (``z`` [and labels] -> tanh images) and
    ``discriminator`` (raw-pixel images [and labels] -> one logit), trained by the
    ordinary ``fit`` on images alone, or ``[images, labels]`` when ``conditional``.

    ``model(inputs)`` returns the discriminator's logits for ``inputs`` (real images in
    [0, 255] [and labels]): deterministic, and what ``predict`` gives; sampling is
    :meth:`generate`. Noise is ``prior`` (``"uniform"`` on [-1, 1], DCGAN's, or
    ``"normal"``) from a seeded ``keras.random.SeedGenerator``.

    Each training step updates the discriminator on the batch, then, on every
    ``n_critic``-th step (every step by default, Goodfellow et al.'s ``k = 1``) the
    generator on fresh noise. Metrics: ``loss`` (the discriminator's loss; Keras'
    callbacks and progress bar expect one called ``loss``) and ``g_loss`` (averaged over
    the steps that updated the generator; 0 before the first).
    """

    paper_adam_betas = (0.5, 0.999)  # Radford et al. 2016, Sec. 4

    def __init__(self, generator, discriminator, conditional=False, prior="uniform",
                 n_critic=1, seed=0, **kwargs):
        super().__init__(**kwargs)
        for value, argument in ((generator, "generator"), (discriminator, "discriminator")):
            if not isinstance(value, keras.Model):
                raise KerasdlError(f"{argument} must be a keras.Model, got {value!r}",
                                   argument=argument)
        self.generator = generator
        self.discriminator = discriminator
        self.conditional = bool(conditional)
        self.prior = check_choice(prior, PRIORS, "prior")
        self.n_critic = check_positive_int(n_critic, "n_critic")
        self.seed = int(seed)
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def inputs(self):
        return self.discriminator.inputs

    @property
    def metrics(self):
        return [self.loss_tracker, self.g_loss_tracker]

    def call(self, inputs, training=False):
        return self.discriminator(inputs, training=training)

    # ------------------------------------------------------------------ sampling

    def sample_noise(self, n, seed):
        """``[n, latent_dim]`` draws from the prior."""
        shape = (n, self.latent_dim)
        if self.prior == "uniform":
            return keras.random.uniform(shape, -1.0, 1.0, seed=seed)
        return keras.random.normal(shape, seed=seed)

    def _generate_tanh(self, n, labels, seed, training):
        z = self.sample_noise(n, seed)
        return self.generator([z, labels] if self.conditional else z, training=training)

    def generate(self, n, labels=None, seed=None):
        """``n`` images in [0, 1] from prior draws fixed by ``seed`` (default: the
        model's); a conditional GAN needs ``labels`` ``[n]``."""
        check_positive_int(n, "n")
        if self.conditional:
            if labels is None:
                raise KerasdlError("a conditional GAN needs labels for generate()",
                                   argument="labels")
            labels = ops.convert_to_tensor(labels, "int32")
            if tuple(labels.shape) != (n,):
                raise KerasdlError(f"labels must have shape ({n},), got "
                                   f"{tuple(labels.shape)}", argument="labels")
        elif labels is not None:
            raise KerasdlError("labels are for a conditional GAN; this one is not",
                               argument="labels")
        rng = keras.random.SeedGenerator(self.seed if seed is None else seed)
        images = self._generate_tanh(n, labels, rng, training=False)
        return ops.clip((images + 1.0) / 2.0, 0.0, 1.0)

    # ------------------------------------------------------------------ objectives

    @staticmethod
    def to_pixels(images):
        """tanh images in [-1, 1] -> the discriminator's raw pixels in [0, 255]."""
        return (images + 1.0) * 127.5

    def _score(self, pixels, labels, training):
        return self.discriminator([pixels, labels] if self.conditional else pixels,
                                  training=training)

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.conditional:
            if isinstance(x, (list, tuple)):
                images, labels = x
            elif y is not None:  # a dataset of (images, labels) pairs
                images, labels = x, y
            else:
                raise KerasdlError("a conditional GAN trains on [images, labels]",
                                   argument="x")
            labels = ops.cast(labels, "int32")
        else:
            images, labels = (x[0] if isinstance(x, (list, tuple)) else x), None
        return ops.cast(images, self.compute_dtype), labels

    def discriminator_objective(self, images, labels, training=True):
        """(the discriminator's loss, ``{tracker name: value}``) on a real batch."""
        n = ops.shape(images)[0]
        real = self._score(images, labels, training)
        fake_images = self._generate_tanh(n, labels, self.seed_generator, training)
        fake = self._score(self.to_pixels(fake_images), labels, training)
        # D runs on the real and the fake batch separately (batch statistics per batch).
        loss = ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))
        return loss, {"loss": loss}

    def generator_objective(self, images, labels, training=True):
        """The generator's loss on fresh noise (``images`` give only the batch size)."""
        n = ops.shape(images)[0]
        fake_images = self._generate_tanh(n, labels, self.seed_generator, training)
        fake = self._score(self.to_pixels(fake_images), labels, training)
        return ops.mean(ops.softplus(-fake))

    def _generator_due(self, iterations):
        # The generator steps when the critic's step count (before this step) is a
        # multiple of n_critic: steps 0, n, 2n, ... so that n_critic critic updates
        # separate consecutive generator updates, and the very first step moves both.
        return ops.equal(ops.mod(ops.cast(iterations, "int32"), self.n_critic), 0)

    def _record(self, d_logs, g_loss, g_weight):
        trackers = {m.name: m for m in self.metrics}
        for name, value in d_logs.items():
            trackers[name].update_state(value)
        # g_weight is 0 on steps without a generator update, which then do not count.
        self.g_loss_tracker.update_state(g_loss, sample_weight=g_weight)
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ compile

    def compile(self, optimizer="adam", *, generator_optimizer=None, adam_betas="paper",
                loss=None, metrics=None, **kwargs):
        """``optimizer`` trains the discriminator; the generator gets
        ``generator_optimizer`` or else a fresh copy of ``optimizer`` (same class and
        config, e.g. the recipe's). With ``adam_betas="paper"`` each Adam (or AdamW)
        gets the paper's betas, ``paper_adam_betas`` (DCGAN ``(0.5, 0.999)``, WGAN-GP
        ``(0.0, 0.9)``), since :class:`~kerasdl.train.Recipe` has no beta fields; pass
        ``(beta_1, beta_2)`` for others or ``None`` to keep the optimizers' own. Both
        are fresh (unbuilt) copies of what is passed, held by one
        :class:`AdversarialOptimizer`; one may also be passed directly (``load_model``
        does so), and is used as it is. Other keyword arguments go to
        ``Model.compile``."""
        _check_training_backend()
        if loss is not None or metrics:
            raise KerasdlError("a GAN computes its own losses and metrics; compile() takes "
                               "no loss or metrics", argument="loss")
        adam_betas = _check_betas(adam_betas)
        if isinstance(optimizer, AdversarialOptimizer):
            if generator_optimizer is not None:
                raise KerasdlError("an AdversarialOptimizer already holds the generator's "
                                   "optimizer", argument="generator_optimizer")
            pair = optimizer
        else:
            d_opt = keras.optimizers.get(optimizer)
            g_opt = d_opt if generator_optimizer is None else \
                keras.optimizers.get(generator_optimizer)
            betas = self.paper_adam_betas if adam_betas == "paper" else adam_betas

            def fresh(o):
                if betas and isinstance(o, keras.optimizers.Adam):
                    return copy_optimizer(o, beta_1=betas[0], beta_2=betas[1])
                return copy_optimizer(o)

            pair = AdversarialOptimizer(fresh(d_opt), fresh(g_opt))
        # The train step has no loss scaling: keep Keras from wrapping the pair.
        kwargs["auto_scale_loss"] = False
        super().compile(optimizer=pair, **kwargs)
        pair.build_networks(self.discriminator.trainable_variables,
                            self.generator.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips a custom compile() when loading; this one rebuilds from its own
        # config (the AdversarialOptimizer with both optimizers), so training resumes.
        self.compile(**keras.saving.deserialize_keras_object(config))

    # ------------------------------------------------------------------ steps

    def train_step(self, *args):
        if _check_training_backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def test_step(self, *args):
        if _check_training_backend() == "jax":
            return self._jax_test_step(*args)
        images, labels = self._unpack(args[0])
        _, d_logs = self.discriminator_objective(images, labels, training=False)
        g_loss = self.generator_objective(images, labels, training=False)
        return self._record(d_logs, g_loss, 1.0)

    def _tf_train_step(self, data):
        import tensorflow as tf

        images, labels = self._unpack(data)
        pair = self.optimizer
        d_vars = self.discriminator.trainable_variables
        g_vars = self.generator.trainable_variables
        due = self._generator_due(pair.discriminator_optimizer.iterations)
        with tf.GradientTape() as tape:
            d_loss, d_logs = self.discriminator_objective(images, labels, training=True)
        pair.discriminator_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)

        def generator_step():
            with tf.GradientTape() as g_tape:
                g_loss = self.generator_objective(images, labels, training=True)
            pair.generator_optimizer.apply(g_tape.gradient(g_loss, g_vars), g_vars)
            return g_loss, tf.constant(1.0)

        if self.n_critic == 1:
            g_loss, weight = generator_step()
        else:
            g_loss, weight = tf.cond(due, generator_step,
                                     lambda: (tf.constant(0.0), tf.constant(0.0)))
        return self._record(d_logs, g_loss, weight)

    def _positions(self, network):
        """Indices of ``network``'s trainable variables in ``self.trainable_variables``."""
        where = {id(v): i for i, v in enumerate(self.trainable_variables)}
        return [where[id(v)] for v in network.trainable_variables]

    def _stateless(self, trainable, non_trainable):
        return keras.StatelessScope(state_mapping=list(zip(
            self.trainable_variables, trainable)) + list(zip(
                self.non_trainable_variables, non_trainable)))

    def _jax_gradient_step(self, objective, positions, optimizer, optimizer_values,
                           trainable, non_trainable, images, labels):
        """One stateless update of the variables at ``positions`` on ``objective``:
        (trainable, non_trainable, optimizer values, loss, logs)."""
        import jax

        def loss_fn(values):
            current = list(trainable)
            for i, value in zip(positions, values):
                current[i] = value
            with self._stateless(current, non_trainable) as scope:
                out = objective(images, labels, training=True)
            loss, logs = out if isinstance(out, tuple) else (out, {})
            # Batch statistics and the noise generator's state advance here.
            updated = [scope.get_current_value(v) for v in self.non_trainable_variables]
            return loss, (logs, updated)

        (loss, (logs, non_trainable)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            [trainable[i] for i in positions])
        new_values, optimizer_values = optimizer.stateless_apply(
            optimizer_values, grads, [trainable[i] for i in positions])
        trainable = list(trainable)
        for i, value in zip(positions, new_values):
            trainable[i] = value
        return trainable, non_trainable, optimizer_values, loss, logs

    def _jax_train_step(self, state, data):
        import jax
        import jax.numpy as jnp

        trainable, non_trainable, optimizer_values, metric_values = state
        images, labels = self._unpack(data)
        pair = self.optimizer
        d_opt, g_opt = pair.discriminator_optimizer, pair.generator_optimizer
        own, d_values, g_values = pair.split(optimizer_values)
        with keras.StatelessScope(state_mapping=list(zip(d_opt.variables, d_values))):
            due = self._generator_due(ops.convert_to_tensor(d_opt.iterations))

        trainable, non_trainable, d_values, _, d_logs = self._jax_gradient_step(
            self.discriminator_objective, self._positions(self.discriminator), d_opt,
            d_values, trainable, non_trainable, images, labels)

        g_positions = self._positions(self.generator)

        def generator_step(trainable, non_trainable, g_values):
            trainable, non_trainable, g_values, g_loss, _ = self._jax_gradient_step(
                self.generator_objective, g_positions, g_opt, g_values, trainable,
                non_trainable, images, labels)
            return (trainable, non_trainable, g_values, jnp.asarray(g_loss, "float32"),
                    jnp.float32(1.0))

        def skip(trainable, non_trainable, g_values):
            return trainable, non_trainable, g_values, jnp.float32(0.0), jnp.float32(0.0)

        if self.n_critic == 1:
            step = generator_step(trainable, non_trainable, g_values)
        else:
            step = jax.lax.cond(due, generator_step, skip, trainable, non_trainable,
                                g_values)
        trainable, non_trainable, g_values, g_loss, weight = step

        with keras.StatelessScope(state_mapping=list(zip(
                self.metrics_variables, metric_values))) as scope:
            logs = self._record(d_logs, g_loss, weight)
        metric_values = [scope.get_current_value(v) for v in self.metrics_variables]
        return logs, (list(trainable), list(non_trainable), own + d_values + g_values,
                      metric_values)

    def _jax_test_step(self, state, data):
        trainable, non_trainable, metric_values = state
        images, labels = self._unpack(data)
        with self._stateless(trainable, non_trainable) as scope:
            _, d_logs = self.discriminator_objective(images, labels, training=False)
            g_loss = self.generator_objective(images, labels, training=False)
        non_trainable = [scope.get_current_value(v) for v in self.non_trainable_variables]
        with keras.StatelessScope(state_mapping=list(zip(
                self.metrics_variables, metric_values))) as scope:
            logs = self._record(d_logs, g_loss, 1.0)
        metric_values = [scope.get_current_value(v) for v in self.metrics_variables]
        return logs, (trainable, non_trainable, metric_values)

    # ------------------------------------------------------------------ config

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "conditional": self.conditional, "prior": self.prior,
                "n_critic": self.n_critic, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kerasdl")
class WGANGP(GAN):
    """WGAN-GP (Gulrajani et al. 2017): a critic with a linear output trained on the
    Wasserstein estimate plus ``gp_weight`` times the gradient penalty, ``n_critic``
    critic steps per generator step, normal noise. Metrics: ``loss`` (the critic's,
    penalty included), ``g_loss``, ``gradient_penalty`` and ``wasserstein``
    (``E[D(x)] - E[D(G(z))]``, the critic's estimate of the distance, which should
    fall as the generator improves)."""

    paper_adam_betas = (0.0, 0.9)  # Gulrajani et al. 2017, Algorithm 1

    def __init__(self, generator, discriminator, conditional=False, prior="normal",
                 n_critic=5, gp_weight=10.0, seed=0, **kwargs):
        super().__init__(generator, discriminator, conditional=conditional, prior=prior,
                         n_critic=n_critic, seed=seed, **kwargs)
        if not (isinstance(gp_weight, (int, float)) and not isinstance(gp_weight, bool)
                and gp_weight >= 0):
            raise KerasdlError(f"gp_weight must be a number >= 0, got {gp_weight!r}",
                               argument="gp_weight")
        self.gp_weight = float(gp_weight)
        if any(isinstance(layer, keras.layers.BatchNormalization)
               for layer in discriminator._flatten_layers()):
            raise KerasdlError(
                "a WGAN-GP critic must not use batch normalisation: the gradient penalty "
                "is per example, and batch statistics mix the examples (Gulrajani et al. "
                "2017, Sec. 4); use layer normalisation or none", argument="discriminator")
        self.gp_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")

    @property
    def metrics(self):
        return [self.loss_tracker, self.g_loss_tracker, self.gp_tracker,
                self.wasserstein_tracker]

    def sample_interpolation_weights(self, n):
        """``[n, 1, 1, 1]`` draws of ``U[0, 1]``, one per example, for the penalty."""
        return keras.random.uniform((n, 1, 1, 1), seed=self.seed_generator)

    def discriminator_objective(self, images, labels, training=True):
        n = ops.shape(images)[0]
        real = self._score(images, labels, training)
        fake_images = self._generate_tanh(n, labels, self.seed_generator, training)
        fake = self._score(self.to_pixels(fake_images), labels, training)
        wasserstein = ops.mean(real) - ops.mean(fake)
        epsilon = self.sample_interpolation_weights(n)
        penalty = gradient_penalty(
            lambda x: self._score(self.to_pixels(x), labels, training),
            images / 127.5 - 1.0, fake_images, epsilon)
        loss = -wasserstein + self.gp_weight * penalty
        return loss, {"loss": loss, "gradient_penalty": penalty, "wasserstein": wasserstein}

    def generator_objective(self, images, labels, training=True):
        n = ops.shape(images)[0]
        fake_images = self._generate_tanh(n, labels, self.seed_generator, training)
        fake = self._score(self.to_pixels(fake_images), labels, training)
        return -ops.mean(fake)

    def get_config(self):
        return {**super().get_config(), "gp_weight": self.gp_weight}


# ---------------------------------------------------------------------- builders


def check_filters(filters):
    """``filters`` as a tuple of positive ints, one per stride-2 layer."""
    if not (isinstance(filters, (tuple, list)) and filters
            and all(isinstance(f, int) and not isinstance(f, bool) and f > 0
                    for f in filters)):
        raise KerasdlError(f"filters must be a non-empty list of positive ints, got "
                           f"{filters!r}", argument="filters")
    return tuple(int(f) for f in filters)


def _initializer(init_stddev):
    if init_stddev is None:
        return "glorot_uniform"
    return keras.initializers.RandomNormal(0.0, init_stddev, seed=None)


def _batch_norm(name):
    # Update rate 0.1 (momentum 0.9), PyTorch's default: the moving statistics that
    # generate() and call() use keep up with networks that change quickly.
    return keras.layers.BatchNormalization(momentum=0.9, name=name)


def build_generator(input_shape, latent_dim=100, filters=(64, 128), kernel_size=5,
                    num_classes=None, init_stddev=DCGAN_INIT_STDDEV, name="generator"):
    """DCGAN generator: ``z`` (concatenated with the one-hot label when
    ``num_classes``) -> a bias-free Dense projection to ``filters[-1]`` maps of
    ``1 / 2**len(filters)`` of the image side -> batch norm, ReLU -> a stride-2
    transposed convolution per remaining filter count (in reverse), each with batch norm
    and ReLU -> a stride-2 transposed convolution to the image's channels, tanh."""
    h, w, channels = input_shape
    scale = 2 ** len(filters)
    init = _initializer(init_stddev)
    z = keras.Input((latent_dim,), name="z")
    inputs, x = z, z
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot",
                                                name="label_one_hot")(labels)
        x = keras.layers.Concatenate(name="z_and_label")([z, one_hot])
        inputs = [z, labels]
    # Bias-free before batch norm, whose shift replaces the bias.
    x = keras.layers.Dense(h // scale * w // scale * filters[-1], use_bias=False,
                           kernel_initializer=init, name="project")(x)
    x = keras.layers.Reshape((h // scale, w // scale, filters[-1]), name="project_map")(x)
    x = keras.layers.ReLU(name="project_relu")(_batch_norm("project_bn")(x))
    for i, f in enumerate(reversed(filters[:-1])):
        x = keras.layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same",
                                         use_bias=False, kernel_initializer=init,
                                         name=f"up{i + 1}")(x)
        x = keras.layers.ReLU(name=f"up{i + 1}_relu")(_batch_norm(f"up{i + 1}_bn")(x))
    x = keras.layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                                     activation="tanh", kernel_initializer=init,
                                     name="images")(x)
    return keras.Model(inputs, x, name=name)


def build_discriminator(input_shape, filters=(64, 128), kernel_size=5, norm="batch",
                        num_classes=None, init_stddev=DCGAN_INIT_STDDEV, logit_bias=True,
                        name="discriminator"):
    """DCGAN discriminator: raw pixels scaled to [-1, 1] (with ``num_classes`` one-hot
    label planes appended as channels) -> a stride-2 convolution per entry of
    ``filters``, LeakyReLU 0.2, normalised (``norm``) from the second on -> flattened
    -> one logit. ``norm="layer"`` normalises each example over all its features (Ba et
    al. 2016) with a gain and bias per channel, WGAN-GP's replacement for batch norm.
    A Wasserstein critic takes ``logit_bias=False``: its loss is unchanged by a constant
    shift of the scores, so a bias would never receive a gradient."""
    check_choice(norm, NORMS, "norm")
    h, w, _ = input_shape
    init = _initializer(init_stddev)
    images = keras.Input(input_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(images)
    inputs = images
    if num_classes:
        labels = keras.Input((), dtype="int32", name="labels")
        one_hot = keras.layers.CategoryEncoding(num_classes, output_mode="one_hot",
                                                name="label_one_hot")(labels)
        planes = keras.layers.RepeatVector(h * w, name="label_repeat")(one_hot)
        planes = keras.layers.Reshape((h, w, num_classes), name="label_planes")(planes)
        x = keras.layers.Concatenate(name="with_label")([x, planes])
        inputs = [images, labels]
    for i, f in enumerate(filters):
        normalised = i > 0 and norm != "none"
        x = keras.layers.Conv2D(f, kernel_size, strides=2, padding="same",
                                use_bias=not (normalised and norm == "batch"),
                                kernel_initializer=init, name=f"conv{i + 1}")(x)
        if normalised and norm == "batch":
            x = _batch_norm(f"conv{i + 1}_bn")(x)
        elif normalised:
            x = ImageLayerNormalization(name=f"conv{i + 1}_ln")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i + 1}_lrelu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logit = keras.layers.Dense(1, use_bias=logit_bias, kernel_initializer=init,
                               name="logit")(x)
    return keras.Model(inputs, logit, name=name)


def build_gan(*, input_shape=(28, 28, 1), latent_dim=100, filters=(64, 128),
              kernel_size=5, num_classes=None, loss="gan", critic_norm="layer",
              n_critic=None, gp_weight=10.0, seed=0, name=None):
    """A :class:`GAN` (``loss="gan"``: DCGAN networks, uniform noise, N(0, 0.02)
    weights) or :class:`WGANGP` (``loss="wgan-gp"``: the same generator, a critic
    normalised by ``critic_norm`` instead of batch norm, normal noise, Keras' default
    Glorot weights), conditional when ``num_classes`` is given."""
    check_choice(loss, ("gan", "wgan-gp"), "loss")
    filters = check_filters(filters)
    input_shape = check_image_shape(input_shape, multiple=2 ** len(filters))
    check_positive_int(latent_dim, "latent_dim")
    check_positive_int(kernel_size, "kernel_size")
    check_positive_int(num_classes, "num_classes", allow_none=True)
    wgan = loss == "wgan-gp"
    if wgan:
        check_choice(critic_norm, CRITIC_NORMS, "critic_norm")
    n_critic = (5 if wgan else 1) if n_critic is None else \
        check_positive_int(n_critic, "n_critic")
    init_stddev = None if wgan else DCGAN_INIT_STDDEV
    generator = build_generator(input_shape, latent_dim, filters, kernel_size, num_classes,
                                init_stddev=init_stddev)
    discriminator = build_discriminator(input_shape, filters, kernel_size,
                                        critic_norm if wgan else "batch", num_classes,
                                        init_stddev=init_stddev, logit_bias=not wgan,
                                        name="critic" if wgan else "discriminator")
    common = dict(conditional=bool(num_classes), n_critic=n_critic, seed=seed, name=name)
    if wgan:
        model = WGANGP(generator, discriminator, gp_weight=gp_weight, **common)
    else:
        model = GAN(generator, discriminator, **common)
    dummy = ops.zeros((1,) + input_shape)
    model([dummy, ops.zeros((1,), "int32")] if num_classes else dummy)
    return model


def gan_count(input_shape=(28, 28, 1), latent_dim=100, filters=(64, 128), kernel_size=5,
              num_classes=0, critic_norm="batch"):
    """Parameters of :func:`build_gan` by hand, generator plus discriminator.

    With ``n = len(filters)``, ``s = 2**n``, ``k = kernel_size``, ``K = num_classes``,
    ``m = (H / s) (W / s)`` positions of the smallest map:

    * generator: projection ``(latent + K) m f_n`` (no bias) and its batch norm
      ``4 f_n`` (gain, bias, moving mean, moving variance); per transposed convolution
      ``k^2 f_prev f`` (no bias) + ``4 f``; output ``k^2 f_1 C + C``;
    * discriminator: first convolution ``k^2 (C + K) f_1 + f_1``; each further one
      ``k^2 f_prev f`` plus ``4 f`` with batch norm (no bias), ``f + 2 f`` with layer
      norm (bias, per-channel gain and bias), ``f`` without; logit ``m f_n + 1``, or
      ``m f_n`` for the WGAN-GP critic (``critic_norm`` other than ``"batch"``).
    """
    h, w, c = input_shape
    k2, K, f = kernel_size ** 2, num_classes, list(filters)
    m = (h // 2 ** len(f)) * (w // 2 ** len(f))
    gen = (latent_dim + K) * m * f[-1] + 4 * f[-1]
    prev = f[-1]
    for width in reversed(f[:-1]):
        gen += k2 * prev * width + 4 * width
        prev = width
    gen += k2 * prev * c + c
    per_norm = {"batch": 4, "layer": 3, "none": 1}[critic_norm]
    disc = k2 * (c + K) * f[0] + f[0]
    for prev, width in zip(f, f[1:]):
        disc += k2 * prev * width + per_norm * width
    disc += m * f[-1] + (1 if critic_norm == "batch" else 0)
    return gen + disc


# DCGAN's Sec. 4 settings: Adam 2e-4 (beta_1 0.5 comes from GAN.compile), constant rate,
# batch 128, the whole training set (no validation split; nothing is selected on it).
_DCGAN_RECIPE = Recipe(
    optimizer="adam", learning_rate=2e-4, schedule="constant", warmup_epochs=0.0,
    epochs=20, batch_size=128, validation_fraction=0.0,
    notes="DCGAN (Radford et al. 2016, Sec. 4): Adam 2e-4 with beta_1 = 0.5 (set by "
          "GAN.compile, adam_betas='paper'), constant rate, batch 128, 20 epochs")

# WGAN-GP's Algorithm 1 defaults: Adam 1e-4, betas (0, 0.9) (set by WGANGP.compile),
# n_critic 5 (a model setting), batch 64. A step is one critic update, so an epoch holds
# a fifth as many generator updates; with a constant rate both optimizers agree on it.
_WGAN_GP_RECIPE = Recipe(
    optimizer="adam", learning_rate=1e-4, schedule="constant", warmup_epochs=0.0,
    epochs=30, batch_size=64, validation_fraction=0.0,
    notes="WGAN-GP (Gulrajani et al. 2017, Algorithm 1): Adam 1e-4 with betas (0, 0.9) "
          "(set by WGANGP.compile, adam_betas='paper'), n_critic 5, lambda 10, constant "
          "rate, batch 64, 30 epochs")

_COMMON = dict(family="generative", task="generation", output_shape=(1,), target="self",
               default_dataset="fashion_mnist")
_TINY = {"input_shape": (8, 8, 1), "filters": (2, 3), "latent_dim": 4}


@register_model(
    "dcgan",
    paper=PAPER,
    reference_params={
        "hand count at 28x28x1, z 100, filters 64/128, 5x5 kernels: G Dense 100x6,272 "
        "(627,200) + BN 512, ConvT 128->64 (204,800) + BN 256, ConvT 64->1 (1,601); D "
        "Conv 1->64 (1,664), Conv 64->128 (204,800) + BN 512, Dense 6,272->1 (6,273)":
            gan_count()},
    test_kwargs=_TINY,
    inputs=(InputDecl("float", 0.0, 255.0),),
    tags=("image", "gan"),
    description="DCGAN for 28x28 images (z 100 -> 7x7x128 -> 14x14x64 -> 28x28)",
    recipe=_DCGAN_RECIPE,
    **_COMMON,
)
def dcgan(input_shape=(28, 28, 1), latent_dim=100, filters=(64, 128), kernel_size=5,
          seed=0, name="dcgan"):
    """DCGAN (:func:`build_gan`); ``model(images)`` gives the discriminator's logits."""
    return build_gan(input_shape=input_shape, latent_dim=latent_dim, filters=filters,
                     kernel_size=kernel_size, seed=seed, name=name)


@register_model(
    "cgan",
    paper=CGAN_PAPER,
    reference_params={
        "hand count as dcgan with 10 classes: the one-hot label adds 10x6,272 (62,720) "
        "to G's projection and 10 label planes add 5x5x10x64 (16,000) to D's first "
        "convolution": gan_count(num_classes=10)},
    test_kwargs={**_TINY, "num_classes": 3},
    inputs=(InputDecl("float", 0.0, 255.0), InputDecl("int", 0, "num_classes")),
    tags=("image", "gan", "conditional"),
    description="conditional DCGAN (one-hot label into generator and discriminator)",
    recipe=_DCGAN_RECIPE,
    **_COMMON,
)
def cgan(input_shape=(28, 28, 1), num_classes=10, latent_dim=100, filters=(64, 128),
         kernel_size=5, seed=0, name="cgan"):
    """Conditional DCGAN: inputs ``[images, labels]``; ``generate(n, labels)``."""
    return build_gan(input_shape=input_shape, latent_dim=latent_dim, filters=filters,
                     kernel_size=kernel_size, num_classes=num_classes, seed=seed,
                     name=name)


@register_model(
    "wgan_gp",
    paper=WGAN_GP_PAPER,
    reference_params={
        "hand count as dcgan's generator (834,369) and a critic with layer norm in "
        "place of batch norm: Conv 1->64 (1,664), Conv 64->128 with bias (204,928) + "
        "per-channel gain and bias 256, Dense 6,272->1 without bias (6,272)":
            gan_count(critic_norm="layer")},
    test_kwargs=_TINY,
    inputs=(InputDecl("float", 0.0, 255.0),),
    tags=("image", "gan"),
    description="WGAN-GP with DCGAN networks (layer-normalised critic, n_critic 5)",
    recipe=_WGAN_GP_RECIPE,
    **_COMMON,
)
def wgan_gp(input_shape=(28, 28, 1), latent_dim=100, filters=(64, 128), kernel_size=5,
            critic_norm="layer", n_critic=5, gp_weight=10.0, seed=0, name="wgan_gp"):
    """WGAN-GP (:func:`build_gan` with ``loss="wgan-gp"``); ``model(images)`` gives the
    critic's scores."""
    return build_gan(input_shape=input_shape, latent_dim=latent_dim, filters=filters,
                     kernel_size=kernel_size, loss="wgan-gp", critic_norm=critic_norm,
                     n_critic=n_critic, gp_weight=gp_weight, seed=seed, name=name)
