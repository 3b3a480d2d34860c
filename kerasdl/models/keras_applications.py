"""Weights from keras.applications into kerasdl's builders of the same networks.

Our builders keep keras.applications' layer names, weight shapes and order where it has
the network, so its weights copy over layer by layer. With them, our model on raw
pixels computes what keras.applications' model computes on ``preprocess_input`` images
(our ``InputScaling`` layer is that preprocessing).
"""

from __future__ import annotations

import os

from kerasdl.errors import KerasdlError, NotFoundError

# Registry name -> keras.applications constructor name.
KERAS_APPLICATIONS = {
    "densenet121": "DenseNet121",
    "densenet169": "DenseNet169",
    "densenet201": "DenseNet201",
    "vgg16": "VGG16",
    "vgg19": "VGG19",
    "xception": "Xception",
    "inception_resnet_v2": "InceptionResNetV2",
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50_v2": "ResNet50V2",
    "resnet101_v2": "ResNet101V2",
    "resnet152_v2": "ResNet152V2",
    "mobilenet": "MobileNet",
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3Small",
    "mobilenet_v3_large": "MobileNetV3Large",
}


def keras_applications_model(name, weights=None, **kwargs):
    """The keras.applications model that registry model ``name`` reproduces."""
    import keras

    if name not in KERAS_APPLICATIONS:
        raise KerasdlError(
            f"{name!r} has no keras.applications counterpart; those with one: "
            f"{', '.join(KERAS_APPLICATIONS)}", argument="name")
    return getattr(keras.applications, KERAS_APPLICATIONS[name])(weights=weights, **kwargs)


def load_keras_applications_weights(model, source, architecture=None):
    """Copy keras.applications weights into ``model`` (built by kerasdl), by layer name.

    Args:
        model: a kerasdl model of a network keras.applications has (see
            ``KERAS_APPLICATIONS``).
        source: a keras.applications model, the path of a ``.weights.h5`` file saved from
            one, or ``"imagenet"`` (keras.applications downloads its weights).
        architecture: the registry name, when ``model.name`` is not one.
    Returns ``model``.
    """
    import keras

    if not isinstance(source, keras.Model):
        architecture = architecture or model.name
        include_top = any(layer.name == "predictions" for layer in model.layers)
        kwargs = {"input_shape": tuple(model.input_shape[1:]), "include_top": include_top}
        if include_top:
            kwargs["classes"] = int(model.output_shape[-1])
        if isinstance(source, str) and source == "imagenet":
            source = keras_applications_model(architecture, weights="imagenet", **kwargs)
        else:
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise NotFoundError(f"no weights file at {path}", argument="source")
            theirs = keras_applications_model(architecture, **kwargs)
            theirs.load_weights(path)
            source = theirs
    theirs_by_name = {layer.name: layer for layer in source.layers if layer.weights}
    pairs, ours_left = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name in theirs_by_name:
            pairs.append((layer, theirs_by_name.pop(layer.name)))
        else:
            ours_left.append(layer)
    # keras.applications leaves some layers unnamed (Xception's shortcut convolutions):
    # those are matched in order, by class and weight shapes.
    theirs_left = list(theirs_by_name.values())
    if len(ours_left) != len(theirs_left):
        names = [layer.name for layer in ours_left[:5]]
        raise KerasdlError(
            f"{source.name} has no layer for {names} ({len(ours_left)} of ours and "
            f"{len(theirs_left)} of theirs unmatched by name); is it the same network?",
            argument="source")
    pairs += list(zip(ours_left, theirs_left))
    for ours, theirs in pairs:
        shapes = [tuple(w.shape) for w in ours.weights]
        their_shapes = [tuple(w.shape) for w in theirs.weights]
        if type(ours) is not type(theirs) or shapes != their_shapes:
            raise KerasdlError(
                f"layer {ours.name!r} ({type(ours).__name__} {shapes}) does not match "
                f"{source.name}'s {theirs.name!r} ({type(theirs).__name__} {their_shapes})",
                argument="source")
        ours.set_weights(theirs.get_weights())
    return model
