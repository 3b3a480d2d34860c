"""The generation task: image models trained on the images alone (autoencoders, VAEs).

Data are the image-classification loaders' (TFDS names, folders, the embedded digits):
the models take raw pixels in [0, 255]; a conditional model also takes the labels
(``[images, labels]``). The model computes its own loss (``compile`` gets no loss), and
``kerasdl train`` writes a grid of samples into the run folder after every epoch
(``samples_epoch_XXX.png``: generated images for a VAE, test reconstructions for an
autoencoder). With the recipe's ``"binarize"`` augmentation the training images are
binarised anew each epoch, and the validation and test images once, by a fixed draw
(numpy seed 0 over the split in order), so that the test negative ELBO is a bound on
the likelihood of binary images and the same at every evaluation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasdl.data.images import ImageData
from kerasdl.tasks import register_task
from kerasdl.tasks.image_classification import ImageClassification

BINARIZE_SEED = 0
SAMPLES = 64


@dataclasses.dataclass
class GenerationData(ImageData):
    """:class:`ImageData` whose validation and test images may be binarised by a fixed
    draw (``binarized``)."""

    binarized: bool = False

    def arrays(self, split="test", limit=None, shuffle_seed=None):
        images, labels = super().arrays(split, limit, shuffle_seed)
        if self.binarized:
            images = fixed_binarization(images)
        return images, labels


def fixed_binarization(images, seed=BINARIZE_SEED):
    """Raw pixels -> 0/255, each pixel on with probability intensity / 255, one fixed
    draw for the array in order."""
    draw = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
    return np.where(draw < images / 255.0, 255.0, 0.0).astype(images.dtype)


def _binarized_split(ds, seed):
    """A batched split binarised by a draw fixed by the batch's position."""
    import tensorflow as tf

    from kerasdl.augment.presets import binarize

    def apply(index, batch):
        x, y = batch
        return binarize(x, tf.stack([tf.constant(seed, tf.int64), index])), y

    return ds.enumerate().map(apply)


class Generation(ImageClassification):
    name = "generation"
    evaluation_uses_recipe = True  # the recipe says whether the data are binarised

    def input_shape_of(self, model):
        return tuple(model.inputs[0].shape[1:])  # the images (a conditional model: first)

    def load_data(self, dataset, *, recipe=None, **kwargs):
        data = super().load_data(dataset, recipe=recipe, **kwargs)
        binarized = getattr(recipe, "augmentation", None) == "binarize"
        fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(ImageData)}
        if binarized:
            fields["validation"] = None if data.validation is None else \
                _binarized_split(data.validation, 1)
            fields["test"] = _binarized_split(data.test, 2)
        return GenerationData(**fields, binarized=binarized)

    def build_model(self, info, data, recipe=None, **overrides):
        kwargs = {**overrides, "input_shape": data.image_shape}
        if "num_classes" in info.default_kwargs():
            kwargs["num_classes"] = data.num_classes
        return info.build(**kwargs)

    def compile_kwargs(self, model=None, recipe=None):
        return {}  # the model's own compute_loss

    def fit_data(self, model, data):
        conditional = bool(getattr(model, "conditional", False))

        def inputs(x, y):
            return ((x, y),) if conditional else (x,)

        return tuple(None if ds is None else ds.map(inputs)
                     for ds in (data.train, data.validation, data.test))

    def inference_model(self, model):
        return model  # the wrapper itself: it saves, reloads and generates

    def callbacks(self, model, data, run_dir):
        import keras

        from kerasdl.callbacks import ImageSampleWriter

        if hasattr(model, "generate"):
            labels = np.arange(SAMPLES) % data.num_classes
            fixed = {"labels": labels} if getattr(model, "conditional", False) else {}

            def sample(m, epoch):  # the same prior draws every epoch
                return m.generate(SAMPLES, seed=0, **fixed)
        else:
            images = data.arrays("test", limit=SAMPLES // 2)[0]

            def sample(m, epoch):  # originals and reconstructions, row by row
                out = keras.ops.convert_to_numpy(m.predict(images, verbose=0)) * 255.0
                pairs = np.stack([images, out], 1).reshape((-1,) + images.shape[1:])
                return pairs / 255.0

        return [ImageSampleWriter(sample, run_dir, columns=8, value_range=(0.0, 1.0))]

    def evaluate(self, model, data, batch_size=256):
        from kerasdl.models.generative.autoencoder import reconstruction_error

        from kerasdl.models.generative.autoencoder import Autoencoder
        from kerasdl.models.generative.vae import VAE

        from kerasdl.models.generative.diffusion import DDPM, denoising_loss

        if isinstance(model, DDPM):
            # The simple loss at steps and noise drawn from a fixed seed: reproducible.
            images, _ = data.arrays("test")
            return {"test_examples": int(len(images)),
                    "test_denoising_loss": float(denoising_loss(model, images,
                                                                batch_size=batch_size))}
        if not isinstance(model, (Autoencoder, VAE)):
            # GANs: their own test losses on the test split.
            test = self.fit_data(model, data)[2]
            losses = model.evaluate(test, verbose=0, return_dict=True)
            return {"test_examples": int(data.num_examples["test"]),
                    **{f"test_{k}": float(v) for k, v in losses.items()}}
        images, labels = data.arrays("test")
        result = {"test_examples": int(len(images))}
        if isinstance(model, VAE):
            from kerasdl.models.generative.vae import negative_elbo

            terms = negative_elbo(model, images, labels if model.conditional else None,
                                  batch_size=batch_size)
            result.update({f"test_{k}": v for k, v in terms.items()})
        else:
            import keras

            errors = []
            for start in range(0, len(images), batch_size):
                x = images[start:start + batch_size]
                y = model.predict(x, verbose=0)
                errors.append(keras.ops.convert_to_numpy(
                    reconstruction_error(x / 255.0, y, model.reconstruction)))
            result["test_reconstruction"] = float(np.concatenate(errors).mean())
            result["reconstruction_loss"] = model.reconstruction
        return result

    def summary(self, result):
        if "test_negative_elbo" in result:
            return (f"{result['dataset']}: test negative ELBO "
                    f"{result['test_negative_elbo']:.2f} nats per image (reconstruction "
                    f"{result['test_reconstruction']:.2f} + KL {result['test_kl']:.2f}; "
                    f"{result['test_bits_per_dim']:.4f} bits per dimension)")
        if "test_reconstruction" in result:
            return (f"{result['dataset']}: test reconstruction "
                    f"{result['test_reconstruction']:.3f} ({result['reconstruction_loss']} "
                    "per image)")
        losses = ", ".join(f"{k[5:]} {v:.4g}" for k, v in result.items()
                           if k.startswith("test_") and k != "test_examples")
        return f"{result['dataset']}: test {losses}"

    def record(self, data):
        return {**super().record(data), "binarized": data.binarized}


register_task(Generation())
