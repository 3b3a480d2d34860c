"""Measures of generated images: a Fréchet distance and the confidence of a classifier.

**This is not the FID of the papers.** The Fréchet Inception Distance (Heusel et al.,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
NeurIPS 2017) fits a Gaussian to the 2,048 pool-3 features of an ImageNet Inception-v3
for real and for generated images and reports the Fréchet distance between the two.
Inception's weights cannot be downloaded here (kerasdl works offline), so kerasdl takes
the features from the penultimate layer of a classifier that kerasdl itself trains on
the same dataset (:func:`reference_classifier`; LeNet-5 by default). The distance
therefore depends on that classifier, its training run included: two numbers are
comparable only when they come from the same classifier (the same run folder) and the
same number of generated and reference images (the estimate is biased, and the bias
shrinks with the sample count). It is never comparable with a published FID.

The Fréchet (2-Wasserstein) distance between Gaussians N(mu1, S1) and N(mu2, S2) is
(Dowson & Landau, "The Fréchet distance between multivariate normal distributions",
J. Multivariate Analysis 12, 1982)::

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

The same classifier also gives two scores in the spirit of the Inception Score (Salimans
et al., "Improved Techniques for Training GANs", NeurIPS 2016): its mean confidence on
the samples (mean largest softmax probability: high when samples look like some class)
and the entropy of the histogram of its predicted classes (nats; log K when the K
classes are equally frequent, 0 when every sample is one class: a collapsed generator).
Read them together: a classifier can be confident on images that look like nothing (all
black, say), which only the entropy and the distance reveal.

Reconstruction error and the negative ELBO (nats per image, bits per dimension) of a VAE
are in :mod:`kerasdl.models.generative` (``reconstruction_error``, ``negative_elbo``).

Units: classifiers take raw pixels in [0, 255] (as ``kerasdl.data`` delivers them);
generators give images in [0, 1]; :func:`to_pixels` maps the latter to the former.
"""

from __future__ import annotations

import os

import numpy as np

from kerasdl.errors import KerasdlError, check_positive_int

__all__ = [
    "GenerativeScorer",
    "classifier_features",
    "class_histogram_entropy",
    "feature_model",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of",
    "mean_confidence",
    "reference_classifier",
    "to_pixels",
]

# Offset added to the covariances' diagonals when the square root of their product is
# not finite, as in the reference implementation of the FID (Heusel et al. 2017).
SINGULAR_EPS = 1e-6
# The reference implementation accepts a complex square root whose diagonal's imaginary
# parts stay below this (rounding on nearly singular products), and keeps its real part.
IMAGINARY_TOLERANCE = 1e-3
# Generated images may overshoot [0, 1] by rounding; more than this is a units mistake.
RANGE_TOLERANCE = 1e-3


def _check_mean(mu, argument):
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 1 or mu.size == 0:
        raise KerasdlError(f"{argument} must be a non-empty vector (features,), got shape "
                           f"{mu.shape}", argument=argument)
    if not np.all(np.isfinite(mu)):
        raise KerasdlError(f"{argument} holds NaN or infinite values", argument=argument)
    return mu


def _check_covariance(sigma, dim, argument):
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.shape != (dim, dim):
        raise KerasdlError(f"{argument} must be a ({dim}, {dim}) covariance matrix to match "
                           f"the mean, got shape {sigma.shape}", argument=argument)
    if not np.all(np.isfinite(sigma)):
        raise KerasdlError(f"{argument} holds NaN or infinite values", argument=argument)
    return sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=SINGULAR_EPS):
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson &
    Landau 1982): ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``, in float64.

    The square root is ``scipy.linalg.sqrtm``, handled as the FID's reference code does
    (Heusel et al. 2017): when it is not finite (a singular product, e.g. fewer samples
    than features), it is recomputed with ``eps * I`` added to both covariances; a
    complex result whose diagonal has imaginary parts below 1e-3 (rounding) keeps its
    real part, larger ones raise :class:`KerasdlError` (the matrices are not valid
    covariances). Rounding can leave a value slightly below 0 for equal Gaussians.
    """
    from scipy import linalg

    mu1, mu2 = _check_mean(mu1, "mu1"), _check_mean(mu2, "mu2")
    if mu1.shape != mu2.shape:
        raise KerasdlError(f"mu1 and mu2 must have the same number of features, got "
                           f"{mu1.size} and {mu2.size}", argument="mu2")
    sigma1 = _check_covariance(sigma1, mu1.size, "sigma1")
    sigma2 = _check_covariance(sigma2, mu1.size, "sigma2")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise KerasdlError(f"eps must be a positive number, got {eps!r}", argument="eps")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(mu1.size) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.max(np.abs(np.diagonal(covmean).imag))
        if imaginary > IMAGINARY_TOLERANCE:
            raise KerasdlError(
                f"the square root of sigma1 @ sigma2 has imaginary parts up to "
                f"{imaginary:.3g} on its diagonal: sigma1 and sigma2 must be symmetric "
                "positive semi-definite covariance matrices", argument="sigma1")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(features, argument="features"):
    """``(mean, covariance)`` in float64 of ``features`` ``[samples, dims]`` (the
    covariance unbiased, as ``np.cov``); at least 2 samples."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise KerasdlError(f"{argument} must be a [samples, features] array, got shape "
                           f"{x.shape}", argument=argument)
    if x.shape[0] < 2:
        raise KerasdlError(f"{argument} needs at least 2 samples to estimate a covariance, "
                           f"got {x.shape[0]}", argument=argument)
    if not np.all(np.isfinite(x)):
        raise KerasdlError(f"{argument} holds NaN or infinite values", argument=argument)
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance_of(features_a, features_b, eps=SINGULAR_EPS):
    """:func:`frechet_distance` between Gaussians fitted to two sets of feature vectors
    ``[samples, dims]`` (at least 2 samples each, the same ``dims``)."""
    mu_a, sigma_a = feature_statistics(features_a, "features_a")
    mu_b, sigma_b = feature_statistics(features_b, "features_b")
    if mu_a.shape != mu_b.shape:
        raise KerasdlError(f"features_a and features_b must have the same number of features, "
                           f"got {mu_a.size} and {mu_b.size}", argument="features_b")
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b, eps=eps)


def to_pixels(images01):
    """Images in [0, 1] (a generator's output) as float32 pixel values in [0, 255], the
    units of kerasdl classifiers. Values more than 1e-3 outside [0, 1] raise (a tanh
    generator's [-1, 1] output must be mapped with ``(x + 1) / 2`` first)."""
    x = np.asarray(images01, dtype=np.float32)
    if x.size == 0:
        raise KerasdlError("images01 is empty", argument="images01")
    low, high = float(np.min(x)), float(np.max(x))
    if not (np.isfinite(low) and np.isfinite(high)) or low < -RANGE_TOLERANCE \
            or high > 1.0 + RANGE_TOLERANCE:
        raise KerasdlError(
            f"images01 must hold values in [0, 1], got [{low:.4g}, {high:.4g}]; pixel values "
            "in [0, 255] need no conversion, and [-1, 1] maps with (x + 1) / 2",
            argument="images01")
    return np.clip(x, 0.0, 1.0) * 255.0


def _is_dense(layer):
    import keras

    return isinstance(layer, keras.layers.Dense)


def _main_model(model):
    """``model`` without auxiliary heads (:func:`kerasdl.heads.main_output_model`)."""
    import keras

    from kerasdl.heads import main_output_model

    if isinstance(model, keras.Sequential):  # one output, and no ``.output`` of its own
        return model
    return main_output_model(model)


def _inputs(model):
    # A single input as a tensor, not a one-element list, so that calling the new model
    # with an array matches its input structure.
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def feature_model(classifier, layer=None):
    """A Keras model from ``classifier``'s input to its features: by default the input
    of its last ``Dense`` layer (the penultimate activations, as the FID takes the input
    of Inception's classifier); else the output of the layer named ``layer``. Spatial
    feature maps ``[b, h, w, c]`` are averaged over ``h, w`` (as Inception's pool-3
    features are). The model shares the classifier's layers and weights."""
    import keras

    if not isinstance(classifier, keras.Model):
        raise KerasdlError(f"classifier must be a Keras model, got {type(classifier).__name__}",
                           argument="classifier")
    model = _main_model(classifier)
    if layer is None:
        dense = [item for item in model.layers if _is_dense(item)]
        if not dense:
            raise KerasdlError(f"{model.name} has no Dense layer at its top level; pass "
                               "layer=... (the name of the layer whose output are the "
                               "features)", argument="layer")
        features = dense[-1].input
    else:
        if not isinstance(layer, str):
            raise KerasdlError(f"layer must be a layer name (str) or None, got {layer!r}",
                               argument="layer")
        try:
            features = model.get_layer(layer).output
        except ValueError:
            raise KerasdlError(f"{model.name} has no layer named {layer!r}",
                               argument="layer") from None
    if isinstance(features, (list, tuple)):
        raise KerasdlError("the chosen layer has several inputs or outputs; pass layer=... "
                           "naming a layer with one output", argument="layer")
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="feature_pool")(features)
    elif len(features.shape) != 2:
        raise KerasdlError(f"features must be vectors [batch, dims] or maps [batch, h, w, c], "
                           f"got shape {tuple(features.shape)}; pass layer=...",
                           argument="layer")
    result = keras.Model(_inputs(model), features, name=f"{model.name}_features")
    result._kerasdl_feature_model = True
    return result


def _fit_to_input(images, model, argument="images"):
    """Pixels ``[n, h, w, c]`` (or ``[n, h, w]``) padded, resized and converted in
    channels to ``model``'s input as ``kerasdl.data`` does (smaller images padded with
    black around the centre, MNIST's 28x28 to LeNet's 32x32; larger ones resized)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise KerasdlError(f"{argument} must be [samples, height, width, channels], got "
                           f"shape {x.shape}", argument=argument)
    if len(x) == 0:
        raise KerasdlError(f"{argument} is empty", argument=argument)
    target = tuple(model.input_shape[1:])
    if len(target) != 3:
        raise KerasdlError(f"the classifier must take images [b, h, w, c], its input is "
                           f"{model.input_shape}", argument="classifier")
    if x.shape[3] not in (1, 3):
        raise KerasdlError(f"{argument} must have 1 or 3 channels, got {x.shape[3]}",
                           argument=argument)
    shape = tuple(t if t is not None else s for t, s in zip(target, x.shape[1:]))
    if x.shape[1:] != shape:
        from kerasdl.data.images import _preprocessor

        x = np.asarray(_preprocessor(shape)(x))
    return x


def _predict(model, images, batch_size, argument="images"):
    check_positive_int(batch_size, "batch_size")
    x = _fit_to_input(images, model, argument)
    return model.predict(x, batch_size=batch_size, verbose=0)


def classifier_features(classifier_or_feature_model, images, batch_size=256):
    """Features ``[samples, dims]`` (float64) of ``images`` in the classifier's units
    (raw pixels, [0, 255]; :func:`to_pixels` converts a generator's [0, 1] output),
    fitted to its input size as ``kerasdl.data`` fits a dataset. A model from
    :func:`feature_model` is used as it is; any other model is treated as a classifier
    and cut with ``feature_model(model)``."""
    model = classifier_or_feature_model
    if not getattr(model, "_kerasdl_feature_model", False):
        model = feature_model(model)
    return np.asarray(_predict(model, images, batch_size), dtype=np.float64)


def _probabilities(outputs, from_logits):
    z = np.asarray(outputs, dtype=np.float64)
    if z.ndim != 2:
        raise KerasdlError(f"the classifier must output [batch, classes], got shape {z.shape}",
                           argument="classifier")
    if not from_logits:
        return z
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mean_confidence(probabilities):
    """Mean over samples of the largest class probability ``[samples, classes]``."""
    return float(np.max(np.asarray(probabilities, dtype=np.float64), axis=1).mean())


def class_histogram_entropy(probabilities):
    """Entropy (nats) of the histogram of predicted classes (argmax of ``[samples,
    classes]``): log(classes) when they are equally frequent, 0 for a single class."""
    p = np.asarray(probabilities)
    counts = np.bincount(np.argmax(p, axis=1), minlength=p.shape[1])
    freq = counts[counts > 0] / counts.sum()
    return float((freq * np.log(1.0 / freq)).sum())  # +0.0, not -0.0, for one class


class GenerativeScorer:
    """Scores generated images against real ones in a kerasdl classifier's feature space.

    ``reference_images`` (real images, raw pixels in [0, 255], e.g. a test split from
    ``ImageData.arrays``) are passed through the classifier once; their feature mean and
    covariance are kept in ``mu`` and ``sigma``, and the classifier's scores on them in
    ``reference`` (the values real data reach). :meth:`score` then takes generated
    images in [0, 1]. See the module docstring for what the distance is and is not.

    Args:
        classifier: a kerasdl image classifier (raw pixels in, logits out), e.g. from
            :func:`reference_classifier`.
        reference_images: ``[n, h, w, c]`` raw pixels, n >= 2; fitted to the classifier's
            input (padded or resized) as ``kerasdl.data`` does.
        layer: the feature layer (see :func:`feature_model`); None for the input of the
            last Dense layer.
        batch_size: images per forward pass.
        from_logits: False when the classifier outputs probabilities.
    """

    def __init__(self, classifier, reference_images, *, layer=None, batch_size=256,
                 from_logits=True):
        import keras

        self.batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(from_logits, bool):
            raise KerasdlError(f"from_logits must be True or False, got {from_logits!r}",
                               argument="from_logits")
        self.from_logits = from_logits
        self.features = feature_model(classifier, layer)
        classifier = _main_model(classifier)
        self.classifier = classifier
        self._both = keras.Model(_inputs(classifier),
                                 [self.features.output, classifier.outputs[0]])
        reference = np.asarray(reference_images, dtype=np.float32)
        high = float(np.max(reference)) if reference.size else 0.0
        if 0.0 < high <= 1.0:
            raise KerasdlError(
                "reference_images must be raw pixel values in [0, 255], but their largest "
                f"value is {high:.3g}; convert [0, 1] images with to_pixels()",
                argument="reference_images")
        features, probabilities = self._run(reference, "reference_images")
        self.mu, self.sigma = feature_statistics(features, "reference_images")
        self.reference = self._summary(probabilities)

    def _run(self, pixels, argument):
        features, outputs = _predict(self._both, pixels, self.batch_size, argument)
        return np.asarray(features, np.float64), _probabilities(outputs, self.from_logits)

    @staticmethod
    def _summary(probabilities):
        return {"mean_confidence": mean_confidence(probabilities),
                "class_histogram_entropy": class_histogram_entropy(probabilities),
                "num_samples": int(len(probabilities))}

    def probabilities(self, samples01):
        """The classifier's class probabilities ``[n, classes]`` for generated images
        ``samples01`` in [0, 1] (fitted to its input as :meth:`score` does): e.g. to
        check that a conditional model gives the classes it was asked for."""
        return self._run(to_pixels(samples01), "samples01")[1]

    def score(self, samples01):
        """``{"frechet_distance", "mean_confidence", "class_histogram_entropy",
        "num_samples"}`` of generated images ``samples01`` in [0, 1] (at least 2):
        the Fréchet distance of their features to the reference's, the classifier's
        mean largest softmax probability on them, and the entropy (nats; log K is
        uniform over K classes) of its predicted-class histogram."""
        pixels = to_pixels(samples01)
        features, probabilities = self._run(pixels, "samples01")
        mu, sigma = feature_statistics(features, "samples01")
        return {"frechet_distance": frechet_distance(self.mu, self.sigma, mu, sigma),
                **self._summary(probabilities)}


def _dataset_stem(dataset):
    return os.path.basename(os.path.normpath(str(dataset))).split(":")[0].lower()


def reference_classifier(dataset="mnist", run_dir=None, *, model="lenet5", epochs=None,
                         input_shape=None, max_examples=None, data_dir=None, seed=0,
                         recipe=None, verbose=None):
    """``(classifier, run_record)``: the feature classifier for :class:`GenerativeScorer`.

    Loads the finished kerasdl run in ``run_dir`` (default ``saved_models/MODEL_DATASET``,
    as ``kerasdl train`` names it) when there is one; else trains ``model`` on ``dataset``
    into it with :func:`kerasdl.train.train` and the model's recipe for that dataset, or
    ``recipe`` (LeNet-5's: 20 epochs, 3-4 minutes on 2 CPU cores, with handwriting
    distortions on MNIST and +-2 px shifts on other images; an interrupted run resumes). ``epochs``, ``max_examples``, ``data_dir``, ``seed``,
    ``recipe`` and ``verbose`` go to the training only. ``input_shape``
    overrides the model's default (LeNet-5 takes 32x32 grey images: MNIST and
    Fashion-MNIST are padded to it, colour datasets turned grey unless given e.g.
    ``(32, 32, 3)``).

    The run folder is the classifier's identity: Fréchet distances are comparable only
    when computed with the same one.
    """
    from kerasdl.train.runs import default_run_dir, is_finished_run, load_run, train

    if not isinstance(dataset, str) or not dataset:
        raise KerasdlError(f"dataset must be a dataset name, got {dataset!r}",
                           argument="dataset")
    run_dir = run_dir or default_run_dir(model, dataset)
    if not is_finished_run(run_dir):
        train(model, dataset, output_dir=run_dir, epochs=epochs, max_examples=max_examples,
              data_dir=data_dir, seed=seed, verbose=verbose, recipe=recipe,
              model_kwargs={"input_shape": tuple(input_shape)} if input_shape else None)
    classifier, record = load_run(run_dir)
    task = record.get("task", "image_classification")
    trained_on = record.get("dataset")
    if task != "image_classification":
        raise KerasdlError(f"{run_dir} holds a {task!r} run, not an image classifier",
                           argument="run_dir")
    if trained_on is not None and _dataset_stem(trained_on) != _dataset_stem(dataset):
        raise KerasdlError(f"{run_dir} holds a classifier trained on {trained_on!r}, not "
                           f"{dataset!r}; give another run_dir", argument="run_dir")
    return classifier, record
