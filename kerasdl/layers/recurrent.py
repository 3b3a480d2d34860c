"""Recurrent layers written out from their equations, one time step at a time.

- :class:`ScratchSimpleRNN`: Elman, "Finding Structure in Time", Cognitive Science 1990.
- :class:`ScratchLSTM`: Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural
  Computation 1997, with the forget gate of Gers, Schmidhuber & Cummins, "Learning to
  Forget: Continual Prediction with LSTM", Neural Computation 2000.
- :class:`ScratchGRU`: Cho et al., "Learning Phrase Representations using RNN
  Encoder-Decoder for Statistical Machine Translation", EMNLP 2014.

Each holds the same weights, with the same shapes and gate order, as the Keras layer of
the same name, so ``ours.set_weights(keras_layer.get_weights())`` (or
:meth:`from_keras`) gives the same outputs: the Keras layers are the reference these are
tested against. They use only ``keras.ops`` and run on every backend.

The loop over time is a Python loop, so the number of time steps must be known when the
layer is called (as for Keras' ``unroll=True``). Masks follow Keras' generic
(non-cuDNN) loop: at a masked step the state is carried over unchanged and the output is
the previous step's output, zeros before the first unmasked step (Keras' JAX scan,
``unroll=False``, repeats the initial state there instead: the same unless an initial
state is given).
"""

from __future__ import annotations

import keras
from keras import ops

from kerasdl.errors import KerasdlError, check_positive_int


def _check_steps(layer, steps):
    if steps is None:
        raise KerasdlError(
            f"{layer} loops over time in Python and needs a known number of time steps: "
            "give the Input a fixed length, e.g. keras.Input(shape=(50, 2))", argument="inputs")
    return int(steps)


class _ScratchRecurrent(keras.layers.Layer):
    """The loop over time shared by the three layers; subclasses write one step.

    Subclasses set ``state_names`` and define ``build_weights(input_dim)``,
    ``project_inputs(sequences)`` (the part of every step that does not depend on the
    state, for all steps at once) and ``step(projected_t, states) -> (output,
    new_states)``.
    """

    keras_class = None
    state_names = ("h",)

    def __init__(self, units, return_sequences=False, return_state=False, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int(units, "units")
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.supports_masking = True

    # ------------------------------------------------------------------------ weights

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3 or sequences_shape[-1] is None:
            raise KerasdlError(
                f"{type(self).__name__} needs inputs [batch, time, features] with a known "
                f"number of features, got shape {tuple(sequences_shape)}", argument="inputs")
        _check_steps(type(self).__name__, sequences_shape[1])
        self.build_weights(int(sequences_shape[-1]))

    @classmethod
    def from_keras(cls, layer, **kwargs):
        """The twin of a built Keras layer (``keras.layers.SimpleRNN``, ``LSTM`` or
        ``GRU``, matching ``cls``), with its weights copied."""
        if not isinstance(layer, cls.keras_class):
            raise KerasdlError(f"{cls.__name__}.from_keras needs a built "
                               f"keras.layers.{cls.keras_class.__name__}, got "
                               f"{type(layer).__name__}", argument="layer")
        if not layer.built:
            raise KerasdlError(f"{layer.name!r} is not built: call it on data first",
                               argument="layer")
        unsupported = [name for name, bad in (
            ("go_backwards", layer.go_backwards), ("stateful", layer.stateful),
            ("use_bias=False", not layer.use_bias), ("dropout", layer.dropout),
            ("recurrent_dropout", layer.recurrent_dropout)) if bad]
        unsupported += cls._unsupported(layer)
        if unsupported:
            raise KerasdlError(f"{cls.__name__} does not implement {', '.join(unsupported)} "
                               f"of {layer.name!r}", argument="layer")
        config = {"units": layer.units, "return_sequences": layer.return_sequences,
                  "return_state": layer.return_state, **cls._keras_options(layer), **kwargs}
        twin = cls(**config)
        # The weights do not depend on the number of steps: any known length builds them.
        twin.build((None, 1, int(layer.cell.kernel.shape[0])))
        twin.set_weights(layer.get_weights())
        return twin

    @classmethod
    def _unsupported(cls, layer):
        return []

    @classmethod
    def _keras_options(cls, layer):
        return {}

    # ------------------------------------------------------------------------ loop

    def call(self, sequences, initial_state=None, mask=None, training=None):
        steps = _check_steps(type(self).__name__, sequences.shape[1])
        batch = ops.shape(sequences)[0]
        states = self._initial_states(initial_state, batch)
        projected = self.project_inputs(sequences)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        # Keras' loop outputs zeros at masked steps that come before any unmasked one.
        output = ops.zeros((batch, self.units), dtype=self.compute_dtype)
        outputs = []
        for t in range(steps):
            new_output, new_states = self.step(projected[:, t], states)
            if mask is None:
                output, states = new_output, new_states
            else:
                keep = mask[:, t, None]
                output = ops.where(keep, new_output, output)
                states = [ops.where(keep, new, old) for new, old in zip(new_states, states)]
            if self.return_sequences:
                outputs.append(output)
        result = ops.stack(outputs, axis=1) if self.return_sequences else output
        if self.return_state:
            return (result, *states)
        return result

    def _initial_states(self, initial_state, batch):
        count = len(self.state_names)
        if initial_state is None:
            return [ops.zeros((batch, self.units), dtype=self.compute_dtype)] * count
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        if len(initial_state) != count:
            raise KerasdlError(
                f"{type(self).__name__} has {count} state(s) ({', '.join(self.state_names)})"
                f", got {len(initial_state)} initial state tensor(s)", argument="initial_state")
        return [ops.cast(s, self.compute_dtype) for s in initial_state]

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_names)
        return output_mask

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        output = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return (output, *[(batch, self.units)] * len(self.state_names))
        return output

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "return_sequences": self.return_sequences, "return_state": self.return_state}


@keras.saving.register_keras_serializable(package="kerasdl")
class ScratchSimpleRNN(_ScratchRecurrent):
    """Elman's simple recurrent layer (1990): ``h_t = tanh(x_t W + h_{t-1} U + b)``.

    Weights as ``keras.layers.SimpleRNN``: ``kernel`` W [features, units],
    ``recurrent_kernel`` U [units, units], ``bias`` b [units]. One state, ``h``, which
    is also the output.
    """

    keras_class = keras.layers.SimpleRNN

    def __init__(self, units, activation="tanh", return_sequences=False, return_state=False,
                 **kwargs):
        super().__init__(units, return_sequences, return_state, **kwargs)
        self.activation = keras.activations.get(activation)

    @classmethod
    def _keras_options(cls, layer):
        return {"activation": keras.activations.serialize(layer.activation)}

    def build_weights(self, input_dim):
        self.kernel = self.add_weight(shape=(input_dim, self.units), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros")

    def project_inputs(self, sequences):
        return ops.matmul(sequences, self.kernel) + self.bias  # x_t W + b, every t

    def step(self, xw_t, states):
        (h_prev,) = states
        h = self.activation(xw_t + ops.matmul(h_prev, self.recurrent_kernel))
        return h, [h]

    def get_config(self):
        return {**super().get_config(),
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="kerasdl")
class ScratchLSTM(_ScratchRecurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997) with a forget gate (Gers et
    al. 2000), as Keras computes it::

        i_t  = sigmoid(x_t W_i + h_{t-1} U_i + b_i)     input gate
        f_t  = sigmoid(x_t W_f + h_{t-1} U_f + b_f)     forget gate
        c~_t = tanh(x_t W_c + h_{t-1} U_c + b_c)        candidate cell
        o_t  = sigmoid(x_t W_o + h_{t-1} U_o + b_o)     output gate
        c_t  = f_t * c_{t-1} + i_t * c~_t
        h_t  = o_t * tanh(c_t)

    Weights as ``keras.layers.LSTM``: ``kernel`` [features, 4 units], ``recurrent_kernel``
    [units, 4 units], ``bias`` [4 units], gates in the order i, f, c, o. The forget bias
    starts at 1 (Keras' ``unit_forget_bias``; Jozefowicz et al. 2015), so that the cell
    keeps its memory at the start of training. States ``h`` and ``c``; the output is ``h``.
    """

    keras_class = keras.layers.LSTM
    state_names = ("h", "c")

    @classmethod
    def _unsupported(cls, layer):
        return _non_default_activations(layer)

    def build_weights(self, input_dim):
        units = self.units

        def bias_initializer(shape, dtype=None):
            return ops.concatenate([ops.zeros((units,), dtype), ops.ones((units,), dtype),
                                    ops.zeros((2 * units,), dtype)])

        self.kernel = self.add_weight(shape=(input_dim, 4 * units), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(units, 4 * units),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        self.bias = self.add_weight(shape=(4 * units,), name="bias",
                                    initializer=bias_initializer)

    def project_inputs(self, sequences):
        return ops.matmul(sequences, self.kernel) + self.bias  # x_t W + b, every t, 4 gates

    def step(self, xw_t, states):
        h_prev, c_prev = states
        x_i, x_f, x_c, x_o = ops.split(xw_t, 4, axis=-1)
        h_i, h_f, h_c, h_o = ops.split(ops.matmul(h_prev, self.recurrent_kernel), 4, axis=-1)
        i = ops.sigmoid(x_i + h_i)
        f = ops.sigmoid(x_f + h_f)
        c_tilde = ops.tanh(x_c + h_c)
        o = ops.sigmoid(x_o + h_o)
        c = f * c_prev + i * c_tilde
        h = o * ops.tanh(c)
        return h, [h, c]


@keras.saving.register_keras_serializable(package="kerasdl")
class ScratchGRU(_ScratchRecurrent):
    """Gated recurrent unit (Cho et al. 2014), as Keras computes it::

        z_t  = sigmoid(x_t W_z + h_{t-1} U_z + b_z)     update gate
        r_t  = sigmoid(x_t W_r + h_{t-1} U_r + b_r)     reset gate
        h~_t = tanh(x_t W_h + b_xh + r_t * (h_{t-1} U_h + b_hh))   reset_after=True
        h~_t = tanh(x_t W_h + (r_t * h_{t-1}) U_h + b_h)           reset_after=False
        h_t  = z_t * h_{t-1} + (1 - z_t) * h~_t

    Note the update rule: ``z`` keeps the old state, as in Cho et al.'s equation (7);
    Chung et al. 2014 and many textbooks write ``h_t = (1 - z) * h_{t-1} + z * h~``
    instead, the same cell with ``z`` relabelled as ``1 - z``.
    ``reset_after=True`` (Keras' default, and cuDNN's and PyTorch's convention) applies
    the reset gate after the recurrent matrix product; the paper applies it before
    (``reset_after=False``).

    Weights as ``keras.layers.GRU``: ``kernel`` [features, 3 units], ``recurrent_kernel``
    [units, 3 units], gates in the order z, r, h; ``bias`` [2, 3 units] (input bias and
    recurrent bias, each split over z, r, h) with ``reset_after=True``, else [3 units].
    """

    keras_class = keras.layers.GRU

    def __init__(self, units, reset_after=True, return_sequences=False, return_state=False,
                 **kwargs):
        super().__init__(units, return_sequences, return_state, **kwargs)
        self.reset_after = bool(reset_after)

    @classmethod
    def _unsupported(cls, layer):
        return _non_default_activations(layer)

    @classmethod
    def _keras_options(cls, layer):
        return {"reset_after": layer.reset_after}

    def build_weights(self, input_dim):
        units = self.units
        self.kernel = self.add_weight(shape=(input_dim, 3 * units), name="kernel",
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(units, 3 * units),
                                                name="recurrent_kernel",
                                                initializer="orthogonal")
        bias_shape = (2, 3 * units) if self.reset_after else (3 * units,)
        self.bias = self.add_weight(shape=bias_shape, name="bias", initializer="zeros")

    def _biases(self):
        """``(input bias, recurrent bias)``, each [3 units]; no recurrent bias when the
        reset gate comes first."""
        if self.reset_after:
            return self.bias[0], self.bias[1]
        return self.bias, None

    def project_inputs(self, sequences):
        input_bias, _ = self._biases()
        return ops.matmul(sequences, self.kernel) + input_bias  # x_t W + b_x, every t

    def step(self, xw_t, states):
        (h_prev,) = states
        units = self.units
        u_z = self.recurrent_kernel[:, :units]
        u_r = self.recurrent_kernel[:, units:2 * units]
        u_h = self.recurrent_kernel[:, 2 * units:]
        x_z, x_r, x_h = ops.split(xw_t, 3, axis=-1)
        if self.reset_after:
            _, recurrent_bias = self._biases()
            b_z, b_r, b_h = ops.split(recurrent_bias, 3, axis=-1)
            z = ops.sigmoid(x_z + ops.matmul(h_prev, u_z) + b_z)
            r = ops.sigmoid(x_r + ops.matmul(h_prev, u_r) + b_r)
            h_tilde = ops.tanh(x_h + r * (ops.matmul(h_prev, u_h) + b_h))
        else:
            z = ops.sigmoid(x_z + ops.matmul(h_prev, u_z))
            r = ops.sigmoid(x_r + ops.matmul(h_prev, u_r))
            h_tilde = ops.tanh(x_h + ops.matmul(r * h_prev, u_h))
        h = z * h_prev + (1 - z) * h_tilde
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


def _non_default_activations(layer):
    """The gated layers here use tanh and sigmoid, Keras' defaults, only."""
    found = []
    for attribute, expected in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        name = keras.activations.serialize(getattr(layer, attribute))
        name = name if isinstance(name, str) else str(name)
        if name != expected:
            found.append(f"{attribute}={name!r}")
    return found
