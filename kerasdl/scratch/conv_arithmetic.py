"""Convolution arithmetic: output sizes, receptive fields, parameter counts and
multiply-accumulates (MACs) of convolutions and pooling, from their formulas.

Output sizes follow Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
learning" (``o = floor((i + 2p - k) / s) + 1`` for a convolution, ``o' = s (i' - 1) + a
+ k - 2p`` for its transpose), with a dilated
kernel's effective size ``k + (k - 1)(d - 1)`` in place of ``k``, and with Keras' meaning
of ``padding="same"`` and of ``output_padding`` (TensorFlow puts the odd padding pixel
after, not before).

Sizes are per spatial axis: pass an int for one axis or a tuple for several (kernel,
stride, dilation and padding then broadcast from an int). Channels are handled by the
parameter and MAC counts, which match ``count_params()`` of Keras' layers and
:func:`kerasdl.analysis.layer_macs` (tested in ``tests/test_scratch_conv_arithmetic.py``).

Pooling has no parameters and no multiplications (its comparisons or additions are not
counted, as in :mod:`kerasdl.analysis`): only its output size is computed here.
"""

from __future__ import annotations

import math

from kerasdl.errors import KerasdlError

__all__ = [
    "effective_kernel_size",
    "conv_output_size",
    "same_padding",
    "transposed_conv_output_size",
    "pool_output_size",
    "global_pool_output_shape",
    "conv_params",
    "depthwise_conv_params",
    "separable_conv_params",
    "transposed_conv_params",
    "conv_macs",
    "depthwise_conv_macs",
    "separable_conv_macs",
    "transposed_conv_macs",
    "stack_receptive_field",
]


# ------------------------------------------------------------------------------ arguments


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _sizes(size, argument="size"):
    """``(per-axis tuple, whether one int was given)``."""
    if _is_int(size):
        values, scalar = (size,), True
    elif isinstance(size, (tuple, list)) and size and all(_is_int(v) for v in size):
        values, scalar = tuple(size), False
    else:
        raise KerasdlError(f"{argument} must be a positive integer or a tuple of them, got "
                           f"{size!r}", argument=argument)
    if min(values) < 1:
        raise KerasdlError(f"{argument} must be positive, got {size!r}", argument=argument)
    return values, scalar


def _per_axis(value, rank, argument, low=1):
    """``value`` (an int or one int per axis) as a tuple of ``rank`` ints >= ``low``."""
    values = (value,) * rank if _is_int(value) else value
    if not (isinstance(values, (tuple, list)) and len(values) == rank
            and all(_is_int(v) and v >= low for v in values)):
        raise KerasdlError(f"{argument} must be an integer >= {low} or {rank} of them (one "
                           f"per spatial axis), got {value!r}", argument=argument)
    return tuple(values)


def _explicit_padding(padding, rank, scalar):
    """``padding`` as ``((before, after), ...)`` per axis: an int pads every side; a
    tuple has one int or ``(before, after)`` pair per axis (for a single axis given as
    an int, the pair itself)."""
    if _is_int(padding):
        entries = ((padding, padding),) * rank
    elif scalar and isinstance(padding, (tuple, list)) and len(padding) == 2 \
            and all(_is_int(p) for p in padding):
        entries = (tuple(padding),)
    elif isinstance(padding, (tuple, list)) and len(padding) == rank:
        entries = tuple((p, p) if _is_int(p) else tuple(p)
                        if isinstance(p, (tuple, list)) else None for p in padding)
    else:
        entries = None
    if entries is None or not all(
            e is not None and len(e) == 2 and all(_is_int(v) and v >= 0 for v in e)
            for e in entries):
        raise KerasdlError(
            f"padding must be 'valid', 'same', 'causal', an integer >= 0, or one integer or "
            f"(before, after) pair per spatial axis; got {padding!r}", argument="padding")
    return entries


def _kernel_rank(kernel_size, rank):
    """The kernel as a tuple: a tuple gives its own rank, an int is square of ``rank``."""
    if _is_int(kernel_size):
        if not _is_int(rank) or rank < 1:
            raise KerasdlError(f"rank must be a positive integer, got {rank!r}",
                               argument="rank")
        return _per_axis(kernel_size, rank, "kernel_size")
    if not isinstance(kernel_size, (tuple, list)) or not kernel_size:
        raise KerasdlError(f"kernel_size must be a positive integer or a tuple of them, "
                           f"got {kernel_size!r}", argument="kernel_size")
    return _per_axis(kernel_size, len(kernel_size), "kernel_size")


def _positive_int(value, argument):
    if not _is_int(value) or value < 1:
        raise KerasdlError(f"{argument} must be a positive integer, got {value!r}",
                           argument=argument)
    return value


def _check_groups(in_channels, filters, groups):
    in_channels = _positive_int(in_channels, "in_channels")
    filters = _positive_int(filters, "filters")
    groups = _positive_int(groups, "groups")
    for name, value in (("in_channels", in_channels), ("filters", filters)):
        if value % groups:
            raise KerasdlError(f"groups={groups} must divide {name}={value} (each group "
                               f"takes an equal share of the inputs and of the filters)",
                               argument="groups")
    return in_channels, filters, groups


def _check_stride_with_dilation(strides, dilation):
    # TensorFlow's convolutions refuse the combination, and so every Keras convolution.
    if max(strides) > 1 and max(dilation) > 1:
        raise KerasdlError(
            f"stride > 1 together with dilation > 1 is not supported by Keras "
            f"convolutions; got stride={strides} and dilation={dilation} (use one or the "
            f"other)", argument="dilation")


def _result(values, scalar):
    return values[0] if scalar else tuple(values)


# --------------------------------------------------------------------------- output sizes


def effective_kernel_size(kernel, dilation=1):
    """``k + (k - 1)(d - 1)``: the span of a kernel of ``k`` taps ``d`` apart (Dumoulin &
    Visin 2016, Sec. 5.1)."""
    kernels, scalar = _sizes(kernel, "kernel")
    dilation = _per_axis(dilation, len(kernels), "dilation")
    return _result([k + (k - 1) * (d - 1) for k, d in zip(kernels, dilation)], scalar)


def same_padding(size, kernel, stride=1, dilation=1):
    """``(before, after)`` padding Keras (TensorFlow) adds for ``padding="same"``: enough
    for ``ceil(i / s)`` outputs, the odd pixel after. One pair, or one per axis."""
    sizes, scalar = _sizes(size)
    rank = len(sizes)
    kernels = effective_kernel_size(_per_axis(kernel, rank, "kernel"),
                                    _per_axis(dilation, rank, "dilation"))
    strides = _per_axis(stride, rank, "stride")
    _check_stride_with_dilation(strides, _per_axis(dilation, rank, "dilation"))
    pads = []
    for i, k, s in zip(sizes, kernels, strides):
        total = max((math.ceil(i / s) - 1) * s + k - i, 0)
        pads.append((total // 2, total - total // 2))
    return _result(pads, scalar)


def conv_output_size(size, kernel, stride=1, padding="valid", dilation=1):
    """Output size of a convolution along each spatial axis.

    ``padding``:

    - ``"valid"``: no padding, ``o = floor((i - k_eff) / s) + 1``;
    - ``"same"``: ``o = ceil(i / s)`` (Keras pads as :func:`same_padding`);
    - ``"causal"`` (Keras' Conv1D): ``k_eff - 1`` zeros before, so also ``ceil(i / s)``;
    - explicit: an int ``p`` on every side, or per axis an int or ``(before, after)``
      pair: ``o = floor((i + before + after - k_eff) / s) + 1`` (Dumoulin & Visin 2016,
      Sec. 2 and 5, with the dilated ``k_eff``).

    Returns an int for an int ``size``, else a tuple.

    Raises:
        KerasdlError: bad values, stride and dilation both above 1 (Keras refuses), or
            an input smaller than the (dilated, padded) kernel.
    """
    sizes, scalar = _sizes(size)
    rank = len(sizes)
    strides = _per_axis(stride, rank, "stride")
    dilation = _per_axis(dilation, rank, "dilation")
    _check_stride_with_dilation(strides, dilation)
    kernels = effective_kernel_size(_per_axis(kernel, rank, "kernel"), dilation)
    if padding in ("same", "causal"):
        if padding == "causal" and rank != 1:
            raise KerasdlError("padding='causal' is for one spatial axis (Conv1D); got "
                               f"{rank} axes", argument="padding")
        return _result([math.ceil(i / s) for i, s in zip(sizes, strides)], scalar)
    pads = ((0, 0),) * rank if padding == "valid" else \
        _explicit_padding(padding, rank, scalar)
    out = []
    for i, k, s, (before, after) in zip(sizes, kernels, strides, pads):
        padded = i + before + after
        if padded < k:
            raise KerasdlError(
                f"input size {i} (padded to {padded}) is smaller than the kernel's span "
                f"{k}: no output position with padding={padding!r}", argument="size")
        out.append((padded - k) // s + 1)
    return _result(out, scalar)


def transposed_conv_output_size(size, kernel, stride=1, padding="valid",
                                output_padding=None, dilation=1):
    """Output size of a transposed convolution (Keras' ``Conv*DTranspose``): Dumoulin &
    Visin 2016, Sec. 4, ``o = s (i - 1) + a + k_eff - 2p``, where the
    convolution it transposes has padding ``p`` and ``a = output_padding`` picks one of
    the ``s`` input sizes that convolution maps to the same output size.

    ``padding="valid"`` is ``p = 0`` and ``"same"`` is ``p = floor(k_eff / 2)``; an
    int is an explicit ``p``. ``output_padding=None`` lets Keras choose ``a``: for
    "valid" ``max(k_eff, s) - k_eff`` (so ``o = s (i - 1) + max(k_eff, s)``), for "same"
    ``s - k_eff mod 2`` (so ``o = s i``), for an explicit ``p`` zero.

    The result is an input size that the transposed convolution maps back to ``i``.
    With "same" and an even ``k_eff``, ``output_padding=0`` breaks that (a "same"
    convolution of ``s (i - 1)`` positions has ``i - 1`` outputs) and is refused, as
    Keras' TensorFlow backend fails on it at call time (its JAX backend returns the
    formula's size).

    Raises:
        KerasdlError: bad values, ``output_padding >= stride`` (Keras refuses), stride and
            dilation both above 1, ``output_padding=0`` with "same" and an even kernel
            span, or no output left after the padding.
    """
    sizes, scalar = _sizes(size)
    rank = len(sizes)
    strides = _per_axis(stride, rank, "stride")
    dilation = _per_axis(dilation, rank, "dilation")
    _check_stride_with_dilation(strides, dilation)
    kernels = effective_kernel_size(_per_axis(kernel, rank, "kernel"), dilation)
    if padding not in ("valid", "same") and not (_is_int(padding) and padding >= 0):
        raise KerasdlError(f"padding must be 'valid', 'same' or an integer >= 0 for a "
                           f"transposed convolution, got {padding!r}", argument="padding")
    extra = None if output_padding is None else \
        _per_axis(output_padding, rank, "output_padding", low=0)
    out = []
    for axis, (i, k, s) in enumerate(zip(sizes, kernels, strides)):
        p = 0 if padding == "valid" else k // 2 if padding == "same" else padding
        if extra is None:
            a = max(k, s) - k if padding == "valid" else s - k % 2 if padding == "same" else 0
        else:
            a = extra[axis]
            if a >= s:
                raise KerasdlError(f"output_padding must be less than the stride on every "
                                   f"axis; got output_padding={output_padding!r} with "
                                   f"stride={stride!r}", argument="output_padding")
            if padding == "same" and k % 2 == 0 and a == 0:
                # A "same" convolution of the size below gives i - 1 positions, not i:
                # there is no convolution this one transposes (TensorFlow fails).
                raise KerasdlError(
                    f"with padding='same' and an even kernel span ({k}), output_padding "
                    f"must be at least 1 (or None); got {output_padding!r}",
                    argument="output_padding")
        o = s * (i - 1) + a + k - 2 * p
        if o < 1:
            raise KerasdlError(f"padding {padding!r} leaves no output for input size {i} "
                               f"and kernel span {k}", argument="padding")
        out.append(o)
    return _result(out, scalar)


def pool_output_size(size, pool_size, stride=None, padding="valid"):
    """Output size of max or average pooling: a convolution's, with the stride defaulting
    to the pool size (Keras' default) and no dilation."""
    sizes, _ = _sizes(size)
    pools = _per_axis(pool_size, len(sizes), "pool_size")
    if stride is not None:
        _per_axis(stride, len(sizes), "stride")
    if padding not in ("valid", "same"):
        raise KerasdlError(f"padding must be 'valid' or 'same' for pooling, got {padding!r}",
                           argument="padding")
    return conv_output_size(size, pools, pools if stride is None else stride, padding)


def global_pool_output_shape(size, channels, keepdims=False):
    """Shape (without the batch) after global max or average pooling: one value per
    channel, ``(channels,)``, or with ``keepdims`` a 1 per spatial axis before it."""
    sizes, _ = _sizes(size)
    channels = _positive_int(channels, "channels")
    return (1,) * len(sizes) + (channels,) if keepdims else (channels,)


# ------------------------------------------------------------------------ parameter counts


def conv_params(kernel_size, in_channels, filters, groups=1, use_bias=True, rank=2):
    """Weights of a convolution: ``prod(k) * (C_in / groups) * filters`` plus ``filters``
    biases. Each of the ``groups`` groups sees ``C_in / groups`` input channels and makes
    ``filters / groups`` outputs. Dilation spreads the same taps, adding none.

    ``kernel_size``: a tuple, or an int for a square kernel of ``rank`` axes.
    """
    kernel = _kernel_rank(kernel_size, rank)
    in_channels, filters, groups = _check_groups(in_channels, filters, groups)
    return math.prod(kernel) * (in_channels // groups) * filters + (filters if use_bias else 0)


def depthwise_conv_params(kernel_size, in_channels, depth_multiplier=1, use_bias=True, rank=2):
    """Weights of a depthwise convolution: ``depth_multiplier`` filters of ``prod(k)``
    taps per input channel, plus one bias per output (``C_in * depth_multiplier``). The
    same as a grouped convolution with ``groups = C_in``."""
    kernel = _kernel_rank(kernel_size, rank)
    outputs = _positive_int(in_channels, "in_channels") * \
        _positive_int(depth_multiplier, "depth_multiplier")
    return math.prod(kernel) * outputs + (outputs if use_bias else 0)


def separable_conv_params(kernel_size, in_channels, filters, depth_multiplier=1,
                          use_bias=True, rank=2):
    """Weights of a depthwise-separable convolution: the depthwise part (no bias), then a
    1x1 convolution from ``C_in * depth_multiplier`` channels to ``filters`` with its
    biases; versus ``prod(k) * C_in * filters`` for a standard convolution."""
    depthwise = depthwise_conv_params(kernel_size, in_channels, depth_multiplier,
                                      use_bias=False, rank=rank)
    pointwise = in_channels * depth_multiplier * _positive_int(filters, "filters")
    return depthwise + pointwise + (filters if use_bias else 0)


def transposed_conv_params(kernel_size, in_channels, filters, use_bias=True, rank=2):
    """Weights of a transposed convolution: those of the convolution it transposes (from
    ``filters`` to ``in_channels`` channels) plus ``filters`` biases, so as many as a
    standard convolution from ``in_channels`` to ``filters``."""
    return conv_params(kernel_size, in_channels, filters, use_bias=use_bias, rank=rank)


# -------------------------------------------------------------------- multiply-accumulates


def _positions_and_kernel(size, kernel_size, argument):
    sizes, _ = _sizes(size, argument)
    kernel = _per_axis(kernel_size, len(sizes), "kernel_size")
    return math.prod(sizes), math.prod(kernel)


def conv_macs(output_size, kernel_size, in_channels, filters, groups=1):
    """MACs of a convolution: at each output position, each of the ``filters`` outputs
    sums ``prod(k) * C_in / groups`` products. Dilation and padding do not change it."""
    positions, taps = _positions_and_kernel(output_size, kernel_size, "output_size")
    in_channels, filters, groups = _check_groups(in_channels, filters, groups)
    return positions * filters * taps * (in_channels // groups)


def depthwise_conv_macs(output_size, kernel_size, in_channels, depth_multiplier=1):
    """MACs of a depthwise convolution: ``prod(k)`` per output channel and position."""
    positions, taps = _positions_and_kernel(output_size, kernel_size, "output_size")
    outputs = _positive_int(in_channels, "in_channels") * \
        _positive_int(depth_multiplier, "depth_multiplier")
    return positions * outputs * taps


def separable_conv_macs(output_size, kernel_size, in_channels, filters, depth_multiplier=1):
    """MACs of a depthwise-separable convolution: the depthwise part plus a 1x1
    convolution, ``positions * C_in * m * (prod(k) + filters)``; a standard convolution
    costs ``positions * C_in * prod(k) * filters``, about ``prod(k)`` times more for many
    filters (Howard et al. 2017, MobileNets, Sec. 3.1)."""
    positions, taps = _positions_and_kernel(output_size, kernel_size, "output_size")
    middle = _positive_int(in_channels, "in_channels") * \
        _positive_int(depth_multiplier, "depth_multiplier")
    return positions * middle * (taps + _positive_int(filters, "filters"))


def transposed_conv_macs(input_size, kernel_size, in_channels, filters):
    """MACs of a transposed convolution, counted on its input: each input position
    scatters ``C_in * prod(k) * filters`` products into the output. Products that fall on
    cropped border positions (``padding="same"``) are included, as a direct
    implementation computes them."""
    positions, taps = _positions_and_kernel(input_size, kernel_size, "input_size")
    return positions * taps * _positive_int(in_channels, "in_channels") * \
        _positive_int(filters, "filters")


# ------------------------------------------------------------------------- receptive field


def stack_receptive_field(layers):
    """Receptive field along one spatial axis after each layer of a plain stack.

    ``layers``: ``(kernel, stride)`` or ``(kernel, stride, dilation)`` per convolution or
    pooling layer. From a single input pixel (``r = 1``, ``j = 1``), each layer gives
    ``r + (k_eff - 1) j`` and jump ``j s``: the field grows by the kernel's span measured
    in input pixels between neighbouring units. :func:`kerasdl.analysis.receptive_field`
    does the same on a built Keras model, branches included.

    Returns:
        a list of ``(size, jump)``, one per layer; the last is the stack's.
    """
    if not isinstance(layers, (list, tuple)) or not layers:
        raise KerasdlError("layers must be a non-empty list of (kernel, stride[, dilation])",
                           argument="layers")
    size, jump, table = 1, 1, []
    for entry in layers:
        if not (isinstance(entry, (tuple, list)) and len(entry) in (2, 3)
                and all(_is_int(v) and v >= 1 for v in entry)):
            raise KerasdlError(f"each entry of layers must be (kernel, stride) or (kernel, "
                               f"stride, dilation) of positive integers, got {entry!r}",
                               argument="layers")
        kernel, stride, dilation = (*entry, 1)[:3]
        size += (effective_kernel_size(kernel, dilation) - 1) * jump
        jump *= stride
        table.append((size, jump))
    return table
