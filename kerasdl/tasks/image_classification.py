"""The image-classification task: TFDS names, the embedded digits or a folder of images;
sparse cross-entropy on logits; accuracy; exports verified by top-1 agreement."""

from __future__ import annotations

import numpy as np

from kerasdl.errors import KerasdlError
from kerasdl.tasks import Task, register_task


class ImageClassification(Task):
    name = "image_classification"

    def load_data(self, dataset, *, input_shape, batch_size=256, validation_fraction=0.1,
                  augment=None, data_dir=None, max_examples=None, seed=0,
                  deterministic=False, recipe=None, codecs=None):
        from kerasdl.data import load_image_classification

        return load_image_classification(
            dataset,
            image_size=tuple(input_shape[:2]),
            channels=input_shape[2],
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            augment=augment,
            data_dir=data_dir,
            max_examples=max_examples,
            seed=seed,
            deterministic=deterministic,
        )

    def make_augment(self, preset, input_shape, seed=0):
        from kerasdl.augment import make_augmentation

        # Images are raw pixels here, so the fill value 0 is black.
        return make_augmentation(preset, tuple(input_shape[:2]), 0.0, seed)

    def build_model(self, info, data, recipe=None, **overrides):
        if recipe is not None and recipe.aux_loss_weight:
            if "aux_classifiers" not in info.default_kwargs():
                raise KerasdlError(
                    f"the recipe sets aux_loss_weight={recipe.aux_loss_weight}, but "
                    f"{info.name!r} has no auxiliary classifiers", argument="recipe")
            overrides = {"aux_classifiers": True, **overrides}
        return info.build(**{**overrides, "input_shape": data.image_shape,
                             "num_classes": data.num_classes})

    def compile_kwargs(self, model=None, recipe=None):
        from kerasdl.losses import sparse_crossentropy

        loss = sparse_crossentropy(getattr(recipe, "label_smoothing", 0.0))
        outputs = model.output if model is not None else None
        if not isinstance(outputs, dict):
            return {"loss": loss, "metrics": ["accuracy"]}
        # A training model with auxiliary classifiers: every head learns the labels, the
        # auxiliary losses discounted by the recipe's weight; accuracy of the main head.
        weight = recipe.aux_loss_weight if recipe is not None else 0.0
        return {
            "loss": {key: loss for key in outputs},
            "loss_weights": {key: 1.0 if key == "predictions" else weight for key in outputs},
            "metrics": {"predictions": ["accuracy"]},
        }

    def fit_data(self, model, data):
        outputs = model.output
        splits = (data.train, data.validation, data.test)
        if not isinstance(outputs, dict):
            return splits
        keys = tuple(outputs)

        def targets(x, y):
            return x, {key: y for key in keys}

        return tuple(None if ds is None else ds.map(targets) for ds in splits)

    def inference_model(self, model):
        from kerasdl.heads import main_output_model

        return main_output_model(model)

    def evaluate(self, model, data, batch_size=256):
        import keras

        x, y = data.arrays("test")
        logits = model.predict(x, batch_size=batch_size, verbose=0)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
        accuracy = float((logits.argmax(-1) == y).mean())
        return {
            "test_examples": int(len(y)),
            "test_accuracy": accuracy,
            "test_error_percent": round(100 * (1 - accuracy), 3),
            "test_loss": float(keras.ops.convert_to_numpy(loss)),
        }

    def summary(self, result):
        return (
            f"{result['dataset']}: test accuracy {100 * result['test_accuracy']:.2f}% "
            f"(error {result['test_error_percent']:.2f}%) on {result['test_examples']:,} examples"
        )

    def record(self, data):
        return {
            "image_shape": list(data.image_shape),
            "num_classes": data.num_classes,
            "class_names": list(data.class_names),
            "preprocessing": data.describe(),
        }

    def check_compatible(self, record, data):
        trained = record.get("class_names")
        if trained is None:
            return
        if list(trained) != list(data.class_names):
            def show(names):
                names = list(names)
                return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")

            raise KerasdlError(
                f"the run was trained on {record.get('dataset')!r} with {len(trained)} "
                f"classes ({show(trained)}) but {data.name!r} has {data.num_classes} "
                f"({show(data.class_names)}); an accuracy across different classes means "
                "nothing, so evaluate it on a dataset with the same classes",
                argument="dataset",
            )

    def verification_data(self, data, limit=None):
        return data.arrays("test", limit=limit)

    def calibration_data(self, data, limit):
        return data.arrays("train", limit=limit, shuffle_seed=0)[0]

    def compare(self, reference, outputs, targets):
        ref_top1 = reference.argmax(-1)
        top1 = outputs.argmax(-1)
        return {
            "accuracy": float((top1 == targets).mean()),
            "top1_agreement": float((top1 == ref_top1).mean()),
            "max_abs_logit_diff": float(np.abs(outputs - reference).max()),
        }

    def describe_io(self, model, record):
        from kerasdl.layers.preprocessing import input_scaling_of

        scaling = input_scaling_of(model)
        height, width, channels = (int(d) for d in model.input_shape[1:])
        return {
            "input": {
                "name": model.inputs[0].name if getattr(model, "inputs", None) else "image",
                "shape": [height, width, channels],
                "dtype": "float32",
                "layout": "NHWC, batch first",
                "color": "grayscale" if channels == 1 else "RGB",
                "pixel_range": [0.0, 255.0] if scaling is not None else None,
                "preparation": record.get("preprocessing", ""),
                "scaling_inside_model": scaling.spec() if scaling is not None else None,
            },
            "output": {
                "kind": "logits",
                "shape": [int(d) for d in model.output_shape[1:]],
                "class_names": record.get("class_names"),
                "decode": "argmax over the last axis; softmax for probabilities",
            },
        }


register_task(ImageClassification())
