"""kerasdl.scratch.conv_arithmetic against the figures of Dumoulin & Visin 2016 and
against Keras' layers: output shapes of an eager call, count_params(), and the MACs of
kerasdl.analysis, over small grids of sizes, kernels, strides, paddings, dilations,
groups and channels."""

import itertools

import keras
import numpy as np
import pytest

from kerasdl.analysis import layer_macs, receptive_field
from kerasdl.errors import KerasdlError
from kerasdl.scratch.conv_arithmetic import (
    conv_macs,
    conv_output_size,
    conv_params,
    depthwise_conv_macs,
    depthwise_conv_params,
    effective_kernel_size,
    global_pool_output_shape,
    pool_output_size,
    same_padding,
    separable_conv_macs,
    separable_conv_params,
    stack_receptive_field,
    transposed_conv_macs,
    transposed_conv_output_size,
    transposed_conv_params,
)

# (stride, dilation) pairs Keras accepts: never both above 1.
STRIDE_DILATION = [(1, 1), (2, 1), (3, 1), (1, 2), ((2, 1), 1), (1, (1, 3))]


def test_the_guides_worked_examples():
    """The examples drawn in Dumoulin & Visin 2016 (Sec. 2, 4 and 5)."""
    assert conv_output_size(4, 3) == 2                            # no padding, unit strides
    assert conv_output_size(5, 4, padding=2) == 6                 # arbitrary padding
    assert conv_output_size(5, 3, padding="same") == 5            # half padding
    assert conv_output_size(5, 3, padding=2) == 7                 # full padding
    assert conv_output_size(5, 3, stride=2) == 2                  # strides, no padding
    assert conv_output_size(5, 3, stride=2, padding=1) == 3       # strides and padding
    assert conv_output_size(6, 3, stride=2, padding=1) == 3       # ... one input more
    assert conv_output_size(7, 3, dilation=2) == 3                # dilated
    assert effective_kernel_size(3, 2) == 5
    # Their transposes: each maps the output size back to the input size; where two
    # inputs (5 and 6) give the same output, output_padding a picks one.
    assert transposed_conv_output_size(2, 3) == 4
    assert transposed_conv_output_size(7, 3, padding=2) == 5
    assert transposed_conv_output_size(2, 3, stride=2) == 5
    assert transposed_conv_output_size(3, 3, stride=2, padding=1) == 5
    assert transposed_conv_output_size(3, 3, stride=2, padding=1, output_padding=1) == 6
    # Per-axis forms and explicit (before, after) padding.
    assert conv_output_size((7, 9), (3, 5), stride=(1, 2)) == (5, 3)
    assert conv_output_size((7, 9), 3, padding=((0, 2), 1)) == (7, 9)
    assert conv_output_size(7, 3, padding=(0, 2)) == 7
    assert same_padding(7, 4, stride=2) == (1, 2)  # TensorFlow puts the odd pixel after
    assert same_padding((5, 6), 3, stride=2) == ((1, 1), (0, 1))


def _eager_shape(layer, shape):
    """The output shape of a real call on zeros (not Keras' own shape inference)."""
    return tuple(layer(np.zeros(shape, dtype="float32")).shape)


def _check(layer, in_shape, out_spatial, out_channels, params, macs):
    """Shape and parameters, and (when ``macs`` is given) kerasdl.analysis' MACs."""
    if macs is not None:
        layer(keras.Input(in_shape[1:]))  # layer_macs reads the symbolic input/output
        assert layer_macs(layer) == macs, layer.get_config()
    assert _eager_shape(layer, in_shape) == (1, *out_spatial, out_channels), layer.get_config()
    assert layer.count_params() == params, layer.get_config()


def _as_tuple(value, rank):
    return value if isinstance(value, tuple) else (value,) * rank


def test_conv2d_shapes_params_and_macs_match_keras():
    size, channels, cases = (7, 14), 4, 0
    for kernel, (stride, dilation), padding, groups in itertools.product(
            [1, 3, (2, 5)], STRIDE_DILATION, ["valid", "same"], [1, 2]):
        filters, use_bias = 6, cases % 3 != 0
        out = conv_output_size(size, kernel, stride, padding, dilation)
        layer = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding,
                                    dilation_rate=dilation, groups=groups, use_bias=use_bias)
        _check(layer, (1, *size, channels), out, filters,
               conv_params(_as_tuple(kernel, 2), channels, filters, groups, use_bias),
               conv_macs(out, kernel, channels, filters, groups))
        cases += 1
    assert cases == 3 * 6 * 2 * 2


def test_conv1d_shapes_params_and_macs_match_keras_including_causal():
    size, channels, filters = 9, 3, 6
    for kernel, (stride, dilation), padding, groups in itertools.product(
            [2, 3], [(1, 1), (2, 1), (1, 3)], ["valid", "same", "causal"], [1, 3]):
        out = conv_output_size(size, kernel, stride, padding, dilation)
        layer = keras.layers.Conv1D(filters, kernel, strides=stride, padding=padding,
                                    dilation_rate=dilation, groups=groups)
        _check(layer, (1, size, channels), (out,), filters,
               conv_params(kernel, channels, filters, groups, rank=1),
               conv_macs(out, kernel, channels, filters, groups))


def test_depthwise_and_separable_shapes_params_and_macs_match_keras():
    size, channels = (6, 7), 3
    for kernel, (stride, dilation), padding, multiplier in itertools.product(
            [3, (1, 2)], [(1, 1), (2, 1), (1, 2)], ["valid", "same"], [1, 2]):
        out = conv_output_size(size, kernel, stride, padding, dilation)
        bias = kernel == 3
        depthwise = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding=padding,
                                                 dilation_rate=dilation,
                                                 depth_multiplier=multiplier, use_bias=bias)
        _check(depthwise, (1, *size, channels), out, channels * multiplier,
               depthwise_conv_params(_as_tuple(kernel, 2), channels, multiplier, bias),
               depthwise_conv_macs(out, kernel, channels, multiplier))
        for use_bias in (True, False):
            separable = keras.layers.SeparableConv2D(5, kernel, strides=stride,
                                                     padding=padding, dilation_rate=dilation,
                                                     depth_multiplier=multiplier,
                                                     use_bias=use_bias)
            _check(separable, (1, *size, channels), out, 5,
                   separable_conv_params(_as_tuple(kernel, 2), channels, 5, multiplier,
                                         use_bias),
                   separable_conv_macs(out, kernel, channels, 5, multiplier) if use_bias
                   else None)


def test_depthwise_is_a_grouped_conv_and_separable_saves_about_k_squared():
    assert depthwise_conv_params(3, 8, 2) == conv_params(3, 8, 16, groups=8)
    assert depthwise_conv_macs((5, 5), 3, 8, 2) == conv_macs((5, 5), 3, 8, 16, groups=8)
    standard = conv_macs((14, 14), 3, 256, 256)
    separable = separable_conv_macs((14, 14), 3, 256, 256)
    # MobileNets Sec. 3.1: the ratio is 1 / N + 1 / D_K^2.
    assert separable / standard == pytest.approx(1 / 256 + 1 / 9)


def test_conv2d_transpose_shapes_and_params_match_keras():
    size, channels, filters, cases = (4, 5), 3, 2, 0
    for kernel, (stride, dilation), padding, output_padding in itertools.product(
            [2, 3, (3, 4)], [(1, 1), (2, 1), (3, 1), (1, 2)], ["valid", "same"],
            [None, 0, 1, 2]):
        if output_padding is not None and output_padding >= stride:
            continue  # Keras refuses it (tested below)
        use_bias = cases % 2 == 0
        layer = keras.layers.Conv2DTranspose(filters, kernel, strides=stride,
                                             padding=padding, output_padding=output_padding,
                                             dilation_rate=dilation, use_bias=use_bias)
        spans = effective_kernel_size(_as_tuple(kernel, 2), dilation)
        if padding == "same" and output_padding == 0 and any(k % 2 == 0 for k in spans):
            # An even span: no convolution maps Keras' output size back to the input.
            with pytest.raises(KerasdlError, match="output_padding"):
                transposed_conv_output_size(size, kernel, stride, padding, output_padding,
                                            dilation)
            if keras.backend.backend() == "tensorflow":
                with pytest.raises(Exception):  # noqa: B017 (TensorFlow's own errors)
                    _eager_shape(layer, (1, *size, channels))
            continue
        out = transposed_conv_output_size(size, kernel, stride, padding, output_padding,
                                          dilation)
        assert _eager_shape(layer, (1, *size, channels)) == (1, *out, filters), \
            layer.get_config()
        assert layer.count_params() == transposed_conv_params(
            _as_tuple(kernel, 2), channels, filters, use_bias)
        cases += 1
    # Per kernel and padding, 2 + 3 + 4 + 2 output paddings over the four strides, less
    # output_padding=0 with 'same' for the undilated kernels 2 and (3, 4) at 3 strides.
    assert cases == 3 * 2 * 11 - 2 * 3


def test_transposed_conv_macs_equal_those_of_the_convolution_it_transposes():
    """A transposed convolution from i to o' is the backward pass of a convolution from
    o' to i: the same products, with the roles of the channel counts swapped."""
    for size, kernel, stride in [((4, 5), 3, 2), ((6, 6), (2, 4), 1), ((3, 3), 5, 3)]:
        out = transposed_conv_output_size(size, kernel, stride)
        assert conv_output_size(out, kernel, stride) == size
        assert transposed_conv_macs(size, kernel, 3, 7) == conv_macs(size, kernel, 7, 3)
    assert transposed_conv_macs((4, 4), 3, 2, 5) == 16 * 9 * 2 * 5


def test_pooling_shapes_and_no_parameters_match_keras():
    size, channels = (7, 10), 3
    for kind, pool, stride, padding in itertools.product(
            [keras.layers.MaxPooling2D, keras.layers.AveragePooling2D], [2, 3, (2, 3)],
            [None, 1, 2], ["valid", "same"]):
        layer = kind(pool, strides=stride, padding=padding)
        out = pool_output_size(size, pool, stride, padding)
        assert _eager_shape(layer, (1, *size, channels)) == (1, *out, channels), \
            layer.get_config()
        assert layer.count_params() == 0 and layer_macs(layer) == 0
    assert pool_output_size(32, 2) == 16 and pool_output_size(7, 3, 2) == 3
    for kind in (keras.layers.GlobalMaxPooling2D, keras.layers.GlobalAveragePooling2D):
        for keepdims in (False, True):
            layer = kind(keepdims=keepdims)
            assert _eager_shape(layer, (1, *size, channels))[1:] == \
                global_pool_output_shape(size, channels, keepdims)
            assert layer.count_params() == 0


def test_stack_receptive_field_matches_kerasdl_analysis():
    stack = [(3, 1), (3, 1), (2, 2), (3, 1, 2), (3, 2), (5, 1, 3)]
    table = stack_receptive_field(stack)
    # By hand: 1+2=3, 3+2=5, 5+1=6 (j 2), 6+2*2*2=14, 14+2*2=18 (j 4), 18+12*4=66.
    assert table == [(3, 1), (5, 1), (6, 2), (14, 2), (18, 4), (66, 4)]
    inputs = keras.Input((96, 96, 1))
    x, outputs = inputs, []
    for kernel, stride, *dilation in stack:
        if kernel == 2:
            x = keras.layers.MaxPooling2D(kernel, stride)(x)
        else:
            x = keras.layers.Conv2D(1, kernel, strides=stride,
                                    dilation_rate=(dilation or [1])[0])(x)
        outputs.append(x)
    model = keras.Model(inputs, x)
    for (size, jump), tensor in zip(table, outputs):
        field = receptive_field(model, tensor)
        assert (field.size, field.jump) == ((size, size), (jump, jump))


@pytest.mark.parametrize("call, argument, keras_layer", [
    (lambda: conv_params(3, 6, 8, groups=4), "groups",
     lambda: keras.layers.Conv2D(8, 3, groups=4).build((None, 9, 9, 6))),
    (lambda: conv_macs((4, 4), 3, 6, 9, groups=2), "groups",
     lambda: keras.layers.Conv2D(9, 3, groups=2)),
    (lambda: conv_output_size(9, 3, stride=2, dilation=2), "dilation",
     lambda: keras.layers.Conv2D(4, 3, strides=2, dilation_rate=2)),
    (lambda: transposed_conv_output_size(4, 3, stride=2, dilation=2), "dilation",
     lambda: keras.layers.Conv2DTranspose(4, 3, strides=2, dilation_rate=2)),
    (lambda: transposed_conv_output_size(4, 3, stride=2, output_padding=2), "output_padding",
     lambda: keras.layers.Conv2DTranspose(4, 3, strides=2, output_padding=2)),
    (lambda: conv_output_size(4, 5), "size",
     lambda: keras.layers.Conv1D(2, 5)(np.zeros((1, 4, 1), "float32"))),
    (lambda: conv_output_size(5, 3, dilation=3), "size",
     lambda: keras.layers.Conv1D(2, 3, dilation_rate=3)(np.zeros((1, 5, 1), "float32"))),
])
def test_invalid_combinations_raise_where_keras_refuses_them(call, argument, keras_layer):
    with pytest.raises(KerasdlError, match=argument) as raised:
        call()
    assert raised.value.argument == argument
    with pytest.raises(Exception):  # noqa: B017 (Keras' own error types differ by case)
        keras_layer()


@pytest.mark.parametrize("call, argument", [
    (lambda: conv_output_size((5, 5), 3, padding="causal"), "padding"),
    (lambda: conv_output_size(5, 3, padding="full"), "padding"),
    (lambda: conv_output_size(5, 3, padding=-1), "padding"),
    (lambda: conv_output_size((5, 5), (3, 3, 3)), "kernel"),
    (lambda: conv_output_size(0, 1), "size"),
    (lambda: conv_output_size(5, 3, stride=0), "stride"),
    (lambda: pool_output_size(5, 2, padding=1), "padding"),
    (lambda: pool_output_size(5, 0), "pool_size"),
    (lambda: transposed_conv_output_size(3, 3, padding="causal"), "padding"),
    (lambda: conv_params(3, 4, 0), "filters"),
    (lambda: conv_params(3.0, 4, 2), "kernel_size"),
    (lambda: depthwise_conv_params(3, 4, depth_multiplier=0), "depth_multiplier"),
    (lambda: global_pool_output_shape((4, 4), 0), "channels"),
    (lambda: stack_receptive_field([(3, 0)]), "layers"),
    (lambda: stack_receptive_field([]), "layers"),
])
def test_bad_arguments_name_the_argument(call, argument):
    with pytest.raises(KerasdlError, match=argument) as raised:
        call()
    assert raised.value.argument == argument
