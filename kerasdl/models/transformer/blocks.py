"""Transformer encoder and decoder blocks, shared by every model of the family.

A block is a stack of *sublayers* (self-attention; in a decoder, cross-attention; the
position-wise feed-forward network), each wrapped in a residual connection with dropout
on the sublayer's output (Vaswani et al. 2017, Sec. 5.4) and a layer normalisation:

* ``norm_position="post"``: ``x = Norm(x + Dropout(Sublayer(x)))``, as in Vaswani et al.
  2017 and BERT (Devlin et al. 2019);
* ``norm_position="pre"``: ``x = x + Dropout(Sublayer(Norm(x)))``, as in GPT-2 (Radford
  et al. 2019, Sec. 2.3), T5 and ViT; such stacks end in one more normalisation.

The attention itself is passed in as a function (:func:`multi_head_attention` builds
``keras.layers.MultiHeadAttention`` with its mask; T5 passes its own relative-position
attention), so that one block serves all the models. Blocks are plain functions of
functional-API tensors; the layers they create are named ``{name}_{sublayer}...``.
"""

from __future__ import annotations

import keras

from kerasdl.errors import check_choice, check_fraction, check_positive_int

NORM_POSITIONS = ("post", "pre")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh")


@keras.saving.register_keras_serializable(package="kerasdl")
def gelu_tanh(x):
    """GELU's tanh approximation, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``:
    what GPT-2 computes (BERT's and ViT's GELU is the exact, erf-based one, ``"gelu"``)."""
    return keras.activations.gelu(x, approximate=True)


def activation(name):
    """The Keras activation for ``"relu"``, ``"gelu"`` (exact) or ``"gelu_tanh"``."""
    check_choice(name, ACTIVATIONS, "activation")
    return gelu_tanh if name == "gelu_tanh" else name


def layer_norm(epsilon):
    """A factory of ``LayerNormalization(epsilon)`` layers by name (Keras' default
    epsilon, 1e-3, is far from every paper's: BERT 1e-12, GPT-2 1e-5, ViT 1e-6)."""
    def make(name):
        return keras.layers.LayerNormalization(epsilon=epsilon, name=name)

    return make


def multi_head_attention(num_heads, key_dim, *, dropout=0.0, attention_mask=None,
                         causal=False, use_bias=True, kernel_initializer="glorot_uniform"):
    """A function ``(query, value, name) -> output`` applying a new
    ``keras.layers.MultiHeadAttention`` with ``attention_mask`` (boolean ``[batch, T,
    S]``) and, with ``causal=True``, its own causal mask; ``dropout`` acts on the
    attention weights."""
    check_positive_int(num_heads, "num_heads")
    check_positive_int(key_dim, "key_dim")

    def attend(query, value, name):
        layer = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, use_bias=use_bias,
            kernel_initializer=kernel_initializer, name=name)
        return layer(query, value, attention_mask=attention_mask, use_causal_mask=causal)

    return attend


def feed_forward(ff_dim, activation_name="relu", *, use_bias=True, inner_dropout=0.0,
                 kernel_initializer="glorot_uniform", output_initializer=None):
    """A function ``(x, name) -> output``: the position-wise network ``Dense(ff_dim,
    activation) -> [Dropout] -> Dense(width of x)`` (Vaswani et al. 2017, Eq. 2).
    ``inner_dropout`` drops the hidden activations too (T5, ViT); ``output_initializer``
    (default: ``kernel_initializer``) starts the second layer."""
    check_positive_int(ff_dim, "ff_dim")
    act = activation(activation_name)

    def apply(x, name):
        h = keras.layers.Dense(ff_dim, activation=act, use_bias=use_bias,
                               kernel_initializer=kernel_initializer, name=f"{name}_inner")(x)
        if inner_dropout:
            h = keras.layers.Dropout(inner_dropout, name=f"{name}_inner_dropout")(h)
        return keras.layers.Dense(x.shape[-1], use_bias=use_bias,
                                  kernel_initializer=output_initializer or kernel_initializer,
                                  name=f"{name}_outer")(h)

    return apply


def residual_sublayer(x, sublayer, *, norm, norm_position, dropout, name):
    """``x`` through ``sublayer`` (a function of the normalised or raw ``x``) with the
    residual connection, output dropout and normalisation of ``norm_position``."""
    check_choice(norm_position, NORM_POSITIONS, "norm_position")
    pre = norm_position == "pre"
    y = sublayer(norm(f"{name}_norm")(x) if pre else x)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = keras.layers.Add(name=f"{name}_residual")([x, y])
    return y if pre else norm(f"{name}_norm")(y)


def encoder_block(x, *, self_attention, feed_forward, norm, norm_position="post",
                  dropout=0.1, name="block"):
    """Self-attention then feed-forward, each a residual sublayer.

    ``self_attention(query, value, name)`` and ``feed_forward(x, name)`` build the
    sublayers (see :func:`multi_head_attention`, :func:`feed_forward`); ``norm(name)``
    makes a normalisation layer."""
    check_fraction(dropout, "dropout")
    x = residual_sublayer(x, lambda q: self_attention(q, q, f"{name}_self_attention"),
                          norm=norm, norm_position=norm_position, dropout=dropout,
                          name=f"{name}_self_attention")
    return residual_sublayer(x, lambda h: feed_forward(h, f"{name}_ffn"), norm=norm,
                             norm_position=norm_position, dropout=dropout,
                             name=f"{name}_ffn")


def decoder_block(x, context=None, *, self_attention, feed_forward, norm,
                  cross_attention=None, norm_position="post", dropout=0.1, name="block"):
    """Self-attention (causal: the caller's mask), cross-attention over ``context`` (the
    encoder's output; left out when ``context`` is None, as in GPT-2's decoder-only
    stack), then feed-forward, each a residual sublayer."""
    check_fraction(dropout, "dropout")
    x = residual_sublayer(x, lambda q: self_attention(q, q, f"{name}_self_attention"),
                          norm=norm, norm_position=norm_position, dropout=dropout,
                          name=f"{name}_self_attention")
    if context is not None:
        x = residual_sublayer(
            x, lambda q: cross_attention(q, context, f"{name}_cross_attention"),
            norm=norm, norm_position=norm_position, dropout=dropout,
            name=f"{name}_cross_attention")
    return residual_sublayer(x, lambda h: feed_forward(h, f"{name}_ffn"), norm=norm,
                             norm_position=norm_position, dropout=dropout,
                             name=f"{name}_ffn")
