"""kerasdl.augment: presets, albumentations by name and in tf.data (with masks and boxes),
Keras layers by name, elastic/affine distortions, test-time augmentation, the plot."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl import augment as aug
from kerasdl.errors import KerasdlError

# Height != width everywhere, so that a transposed axis shows.
H, W = 24, 40
RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (4, H, W, 3)).astype("float32")
LABELS = np.arange(4, dtype="int64")


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _epoch(ds):
    return [_np(batch[0] if isinstance(batch, tuple) else batch) for batch in ds]


# --- presets ---------------------------------------------------------------------------

def test_presets_are_all_accepted_by_recipes_and_bad_names_are_errors():
    from kerasdl.train import Recipe

    assert set(aug.PRESETS) == {"none", "shift", "affine", "cifar", "light", "strong",
                                "digits", "digits_mild", "elastic", "binarize"}
    assert set(aug.PRESET_DESCRIPTIONS) == set(aug.PRESETS)
    for preset in aug.PRESETS:
        assert Recipe(augmentation=preset).augmentation == preset
    assert aug.make_augmentation("none", (H, W)) is None
    with pytest.raises(KerasdlError, match="digits") as error:
        aug.make_augmentation("mixup", (H, W))
    assert error.value.argument == "preset"
    with pytest.raises(KerasdlError) as error:
        aug.make_augmentation("elastic", (H,))
    assert error.value.argument == "image_shape"


@pytest.mark.parametrize("preset", ["shift", "affine", "cifar", "light", "strong",
                                    "digits", "digits_mild", "elastic"])
def test_each_preset_keeps_shape_and_dtype_and_changes_images(preset):
    hook = aug.make_augmentation(preset, (H, W), seed=1)
    out, labels = hook(tf.constant(PIXELS), tf.constant(LABELS))
    assert tuple(out.shape) == PIXELS.shape and out.dtype == tf.float32
    assert np.array_equal(_np(labels), LABELS)
    out = _np(out)
    assert not np.allclose(out, PIXELS)
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    # The seeded presets also take one-channel (digit) images.
    if preset in ("strong", "digits", "elastic"):
        grey, _ = hook(tf.constant(PIXELS[..., :1]), tf.constant(LABELS))
        assert tuple(grey.shape) == (4, H, W, 1)


def test_digits_mild_is_digits_with_its_own_elastic_strength(monkeypatch):
    """The LeNet-5 recipe's preset reads DIGIT_DISTORTION_MILD: with Simard's alpha put
    back it draws exactly what "digits" draws under the same seed."""
    def draw(preset):
        out, _ = aug.make_augmentation(preset, (H, W), seed=3)(tf.constant(PIXELS),
                                                               tf.constant(LABELS))
        return _np(out)

    assert aug.DIGIT_DISTORTION_MILD["alpha"] < aug.DIGIT_DISTORTION["alpha"]
    assert not np.allclose(draw("digits_mild"), draw("digits"))
    monkeypatch.setitem(aug.DIGIT_DISTORTION_MILD, "alpha", aug.DIGIT_DISTORTION["alpha"])
    np.testing.assert_array_equal(draw("digits_mild"), draw("digits"))


@pytest.mark.parametrize("preset", ["strong", "digits"])
def test_seeded_presets_do_not_depend_on_parallel_calls_and_change_each_epoch(preset):
    ds = tf.data.Dataset.from_tensor_slices((PIXELS, LABELS)).batch(1)
    parallel = aug.make_augmentation(preset, (H, W), seed=5).apply_to_dataset(ds, 4)
    assert parallel.element_spec[0].shape.as_list() == [None, H, W, 3]
    first, second = _epoch(parallel), _epoch(parallel)
    sequential = _epoch(aug.make_augmentation(preset, (H, W), seed=5).apply_to_dataset(ds, 1))
    other_seed = _epoch(aug.make_augmentation(preset, (H, W), seed=6).apply_to_dataset(ds, 4))
    assert all(np.array_equal(a, b) for a, b in zip(first, sequential))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other_seed))
    # Given the batch seed explicitly (as the loader does), the hook's own seed still counts.
    batch = tf.constant(PIXELS[:2])
    one = _np(aug.make_augmentation(preset, (H, W), seed=5).augment_batch(batch, None, 11)[0])
    same = _np(aug.make_augmentation(preset, (H, W), seed=5).augment_batch(batch, None, 11)[0])
    other = _np(aug.make_augmentation(preset, (H, W), seed=6).augment_batch(batch, None, 11)[0])
    assert np.array_equal(one, same) and not np.array_equal(one, other)


def test_seeded_hooks_plug_into_the_loader_reproducibly():
    """The loader passes each batch's seed to ``augment_batch``: the same seed gives the
    same augmented epoch, and the next epoch differs."""
    from kerasdl.data import load_image_classification

    def first_batches(augment):
        data = load_image_classification("digits", batch_size=8, max_examples=16, seed=3,
                                         augment=augment)
        return [_np(x) for x, _ in data.train], [_np(x) for x, _ in data.train]

    plain, _ = first_batches(None)
    epoch1, epoch2 = first_batches(aug.make_augmentation("digits", (28, 28)))
    again, _ = first_batches(aug.make_augmentation("digits", (28, 28)))
    assert all(a.shape == (8, 28, 28, 1) for a in epoch1)
    assert all(np.array_equal(a, b) for a, b in zip(epoch1, again))
    assert not any(np.array_equal(a, b) for a, b in zip(epoch1, plain))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2))


def test_a_list_or_an_albumentations_pipeline_makes_a_hook():
    hook = aug.make_augmentation([("flip", {"mode": "horizontal"}), "contrast"], (H, W))
    out, _ = hook(PIXELS, LABELS)
    assert tuple(out.shape) == PIXELS.shape
    flip = aug.make_augmentation(aug.compose([("HorizontalFlip", {"p": 1.0})]), (H, W))
    assert isinstance(flip, aug.AlbumentationsAugmentation)
    out, _ = flip(PIXELS, LABELS)
    np.testing.assert_array_equal(_np(out), PIXELS[:, :, ::-1])


# --- albumentations by name ------------------------------------------------------------

def test_course_names_map_to_albumentations_2():
    contrast = aug.albumentation("RandomContrast", limit=0.3, p=1.0)
    assert type(contrast).__name__ == "RandomBrightnessContrast"
    assert tuple(contrast.brightness_limit) == (0.0, 0.0)
    assert tuple(contrast.contrast_limit) == pytest.approx((-0.3, 0.3))
    jpeg = aug.albumentation("JpegCompression", quality_lower=10, quality_upper=20)
    assert type(jpeg).__name__ == "ImageCompression"
    assert tuple(jpeg.quality_range) == (10, 20) and jpeg.compression_type == "jpeg"
    assert type(aug.albumentation("ColorInversion")).__name__ == "InvertImg"
    cutout = aug.albumentation("Cutout", num_holes=2, max_h_size=4, max_w_size=6, p=1.0)
    assert tuple(cutout.num_holes_range) == (2, 2)
    assert tuple(cutout.hole_width_range) == (6, 6)
    # RandomBrightness shifts by limit * 255 and leaves contrast alone.
    image = RNG.integers(0, 256, (H, W, 3)).astype("uint8")
    brighter = aug.albumentation("RandomBrightness", limit=(0.2, 0.2), p=1.0)(image=image)
    expected = np.clip(image.astype(int) + 51, 0, 255)
    assert np.abs(brighter["image"].astype(int) - expected).max() <= 1


def test_bad_names_and_parameters_are_errors_that_list_the_choices():
    with pytest.raises(KerasdlError) as error:
        aug.albumentation("RGBshift")
    message = str(error.value)
    assert error.value.argument == "name"
    assert "did you mean RGBShift" in message and "JpegCompression" in message
    assert "ImageCompression" in message
    with pytest.raises(KerasdlError) as error:
        aug.albumentation("Blur", radius=3)
    assert error.value.argument == "params" and "blur_limit" in str(error.value)
    with pytest.raises(KerasdlError) as error:
        aug.compose(["HorizontalFlip", 3])
    assert error.value.argument == "transforms"


def test_every_course_transform_runs_on_float_pixels_through_the_bridge():
    required = {"RandomCrop": {"height": H, "width": W},
                "RandomResizedCrop": {"size": (H, W)}}
    specs = [(name, {**required.get(name, {}), "p": 1.0}) for name in aug.COURSE_TRANSFORMS]
    for spec in specs:
        hook = aug.AlbumentationsAugmentation(aug.compose([spec]), seed=0)
        out, _ = hook.augment_batch(PIXELS[:1], None, 3)
        assert tuple(out.shape) == (1, H, W, 3) and out.dtype == tf.float32, spec
        values = _np(out)
        assert np.array_equal(values, np.round(values)), spec   # uint8 round trip


def test_float_path_keeps_fractional_pixels():
    pixels = np.minimum(PIXELS[:2], 254.0) + 0.25
    hook = aug.AlbumentationsAugmentation([("HorizontalFlip", {"p": 1.0})], as_uint8=False)
    out, _ = hook(pixels, None)
    np.testing.assert_allclose(_np(out), pixels[:, :, ::-1], atol=1e-4)


# --- the bridge: masks and boxes --------------------------------------------------------

def _marked_elements(n=6):
    """Images with one bright pixel, a mask marking it and a 1x1 box around it."""
    images = np.zeros((n, H, W, 3), "float32")
    masks = np.zeros((n, H, W), "int32")
    boxes = np.zeros((n, 1, 4), "float32")
    for i in range(n):
        r, c = 3 + 2 * i, 5 + 3 * i
        images[i, r, c] = 255.0
        masks[i, r, c] = 9
        boxes[i, 0] = (c, r, c + 1, r + 1)
    return {"image": images, "mask": masks, "bboxes": boxes,
            "bbox_labels": np.full((n, 1), 7, "int64"), "label": np.arange(n)}


def test_masks_and_boxes_move_exactly_with_their_images():
    import cv2

    transform = [("HorizontalFlip", {"p": 0.5}), ("VerticalFlip", {"p": 0.5}),
                 ("Affine", {"translate_px": {"x": (-3, 3), "y": (-2, 2)}, "p": 1.0,
                             "interpolation": cv2.INTER_NEAREST})]
    elements = _marked_elements()
    ds = tf.data.Dataset.from_tensor_slices(elements)
    out = aug.augment_dataset(ds, transform, seed=2, num_parallel_calls=3)
    spec = out.element_spec
    assert spec["image"].shape.as_list() == [H, W, 3] and spec["image"].dtype == tf.float32
    assert spec["mask"].shape.as_list() == [H, W] and spec["mask"].dtype == tf.int32
    assert spec["bboxes"].shape.as_list() == [None, 4]
    assert spec["bbox_labels"].shape.as_list() == [None]
    moved = 0
    for i, element in enumerate(out):
        image, mask = _np(element["image"])[..., 0], _np(element["mask"])
        r, c = np.unravel_index(np.argmax(image), image.shape)
        assert image[r, c] == 255.0 and np.count_nonzero(image) == 1
        assert np.argwhere(mask == 9).tolist() == [[r, c]]
        np.testing.assert_allclose(_np(element["bboxes"]), [[c, r, c + 1, r + 1]], atol=1e-3)
        assert _np(element["bbox_labels"]).tolist() == [7]
        assert int(element["label"]) == i
        moved += (r, c) != (3 + 2 * i, 5 + 3 * i)
    assert moved >= 3


def test_crops_set_the_static_size_and_drop_boxes_that_leave():
    ds = tf.data.Dataset.from_tensor_slices({
        "image": PIXELS[:1],
        "bboxes": np.array([[[12, 8, 14, 10], [0, 0, 3, 3]]], "float32"),
        "bbox_labels": np.array([[1, 2]], "int64"),
    })
    # Centre crop 12x20 of 24x40: rows 6..17, columns 10..29.
    out = aug.augment_dataset(ds, [("CenterCrop", {"height": 12, "width": 20})])
    assert out.element_spec["image"].shape.as_list() == [12, 20, 3]
    element = next(iter(out))
    np.testing.assert_array_equal(_np(element["image"]), PIXELS[0, 6:18, 10:30])
    np.testing.assert_allclose(_np(element["bboxes"]), [[2, 2, 4, 4]], atol=1e-3)
    assert _np(element["bbox_labels"]).tolist() == [1]


def test_tuple_elements_are_reproducible_per_seed_and_new_each_epoch():
    ds = tf.data.Dataset.from_tensor_slices((PIXELS, LABELS))
    transform = [("RandomBrightnessContrast", {"p": 1.0}), ("HorizontalFlip", {})]

    def run(seed, parallel):
        return aug.augment_dataset(ds, transform, seed=seed, num_parallel_calls=parallel)

    parallel = run(3, 4)
    first, second = _epoch(parallel), _epoch(parallel)
    assert [int(y) for _, y in parallel] == LABELS.tolist()
    assert all(np.array_equal(a, b) for a, b in zip(first, _epoch(run(3, 1))))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, _epoch(run(4, 4))))


def test_bridge_argument_errors():
    ds = tf.data.Dataset.from_tensor_slices({"mask": np.zeros((2, H, W))})
    with pytest.raises(KerasdlError, match="'image'"):
        aug.augment_dataset(ds, ["HorizontalFlip"])
    with pytest.raises(KerasdlError) as error:
        aug.augment_dataset(tf.data.Dataset.from_tensor_slices(PIXELS), ["HorizontalFlip"],
                            bbox_format="xyxy")
    assert error.value.argument == "bbox_format" and "pascal_voc" in str(error.value)
    with pytest.raises(KerasdlError, match="unbatched"):
        aug.augment_dataset(tf.data.Dataset.from_tensor_slices(PIXELS).batch(2), ["Blur"])


# --- Keras layers -----------------------------------------------------------------------

def test_keras_pipeline_by_name_with_pixel_value_range_and_fill():
    pipeline = aug.keras_pipeline(["RandomFlip", ("rotation", {"factor": 0.1}), "contrast",
                                   ("crop", {"height": 20, "width": 30}), "elastic"],
                                  seed=4, fill_value=0.0)
    flip, rotation, contrast, crop, elastic = pipeline.layers
    assert flip.mode == "horizontal"
    assert rotation.fill_mode == "constant" and rotation.fill_value == 0.0
    assert tuple(contrast.value_range) == (0, 255)
    assert isinstance(elastic, aug.RandomDistortion) and elastic.params["alpha"] == 34.0
    ds = tf.data.Dataset.from_tensor_slices(PIXELS).batch(2).map(
        lambda x: pipeline(x, training=True))
    assert ds.element_spec.shape.as_list() == [None, 20, 30, 3]
    assert _np(next(iter(ds))).shape == (2, 20, 30, 3)
    with pytest.raises(KerasdlError) as error:
        aug.keras_layer("mirror")
    assert error.value.argument == "name" and "gaussian_blur" in str(error.value)
    with pytest.raises(KerasdlError, match="height and width"):
        aug.keras_layer("crop")


# --- elastic and affine distortions ----------------------------------------------------

def _ramps(batch, h, w):
    """Channel 0 holds each pixel's x, channel 1 its y: bilinear sampling of a linear
    ramp is exact, so the output holds the sampling positions."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.broadcast_to(np.stack([xx, yy], -1), (batch, h, w, 2)).astype("float32")


def test_no_distortion_is_the_identity():
    out = aug.distort(PIXELS, [1, 2])
    np.testing.assert_array_equal(_np(out), PIXELS)
    as_uint8 = aug.distort(PIXELS.astype("uint8"), [1, 2], alpha=5.0, sigma=2.0)
    assert as_uint8.dtype == tf.uint8 and tuple(as_uint8.shape) == PIXELS.shape


def test_elastic_field_is_smoothed_uniform_noise_of_the_papers_scale():
    h, w, sigma, alpha = 48, 72, 2.0, 8.0
    ramps = _ramps(4, h, w)
    out = _np(aug.distort(ramps, [3, 4], alpha=alpha, sigma=sigma, fill_value=-1.0))
    again = _np(aug.distort(ramps, [3, 4], alpha=alpha, sigma=sigma, fill_value=-1.0))
    other = _np(aug.distort(ramps, [3, 5], alpha=alpha, sigma=sigma, fill_value=-1.0))
    assert np.array_equal(out, again) and not np.allclose(out, other)
    margin = 8  # beyond the kernel's reach into the zero padding
    field = (out - ramps)[:, margin:h - margin, margin:w - margin]
    dx, dy = field[..., 0], field[..., 1]
    # Uniform[-1, 1] noise has variance 1/3; the separable Gaussian scales its standard
    # deviation by the sum of squared 1-D taps.
    taps = aug.distortions.gaussian_kernel(sigma)
    expected = alpha * np.sqrt(1.0 / 3.0) * np.sum(taps**2)
    for component in (dx, dy):
        assert component.std() == pytest.approx(expected, rel=0.25)
        assert np.abs(component.mean()) < 0.3 * expected
        # Smooth: neighbours move together (unsmoothed noise would give about 0).
        assert np.corrcoef(component[:, :, 1:].ravel(), component[:, :, :-1].ravel())[0, 1] > 0.8
        assert np.corrcoef(component[:, 1:].ravel(), component[:, :-1].ravel())[0, 1] > 0.8
    assert abs(np.corrcoef(dx.ravel(), dy.ravel())[0, 1]) < 0.5


def test_smoothing_matrix_is_the_zero_padded_gaussian_convolution():
    taps = aug.distortions.gaussian_kernel(3.0)
    g = _np(aug.distortions.smoothing_matrix(20, 3.0))
    v = np.random.default_rng(0).normal(size=20)
    np.testing.assert_allclose(g @ v, np.convolve(v, taps, mode="same"), atol=1e-6)


def test_bilinear_sampling_matches_a_reference_inside_and_beyond_the_border():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (3, 7, 9, 2)).astype("float32")
    src_y = rng.uniform(-3, 10, (3, 7, 9)).astype("float32")
    src_x = rng.uniform(-3, 12, (3, 7, 9)).astype("float32")
    fill = -5.0

    def pixel(b, y, x):
        inside = 0 <= y < 7 and 0 <= x < 9
        return images[b, y, x] if inside else np.full(2, fill, "float32")

    expected = np.zeros_like(images)
    for b, i, j in np.ndindex(3, 7, 9):
        y, x = src_y[b, i, j], src_x[b, i, j]
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        wy, wx = y - y0, x - x0
        expected[b, i, j] = ((1 - wy) * (1 - wx) * pixel(b, y0, x0) + (1 - wy) * wx * pixel(b, y0, x0 + 1)
                             + wy * (1 - wx) * pixel(b, y0 + 1, x0) + wy * wx * pixel(b, y0 + 1, x0 + 1))
    out = aug.distortions._bilinear(tf.constant(images), tf.constant(src_y), tf.constant(src_x), fill)
    np.testing.assert_allclose(_np(out), expected, atol=2e-3)


def test_images_of_unknown_size_are_distorted_as_images_of_known_size():
    params = dict(aug.DIGIT_DISTORTION_MILD)
    known = tf.function(lambda x, s: aug.distort(x, s, **params))
    unknown = tf.function(lambda x, s: aug.distort(x, s, **params), input_signature=[
        tf.TensorSpec([None, None, None, 1]), tf.TensorSpec([2], tf.int64)])
    x = tf.constant(PIXELS[..., :1])
    seed = tf.constant([4, 2], tf.int64)
    np.testing.assert_allclose(_np(known(x, seed)), _np(unknown(x, seed)), atol=2e-3)


def test_rotation_turns_about_the_centre_of_a_wide_image():
    ramps = _ramps(6, H, W)
    out = _np(aug.distort(ramps, [7, 8], rotation=20.0, fill_value=-1.0))
    cy, cx = (H - 1) / 2, (W - 1) / 2
    inside = (out[..., 0] >= 0) & (out[..., 0] <= W - 1) & (out[..., 1] >= 0) & (
        out[..., 1] <= H - 1)
    src_r = np.hypot(out[..., 0] - cx, out[..., 1] - cy)
    dst_r = np.hypot(ramps[..., 0] - cx, ramps[..., 1] - cy)
    # Interior samples only: bilinear blending with the fill at the border is not a ramp.
    core = inside & (dst_r < min(H, W) / 2 - 2)
    np.testing.assert_allclose(src_r[core], dst_r[core], atol=1e-3)
    angles = []
    for i in range(len(out)):
        y, x = 2, 10  # a fixed pixel away from the centre
        src = np.arctan2(out[i, int(cy) + y, int(cx) + x, 1] - cy,
                         out[i, int(cy) + y, int(cx) + x, 0] - cx)
        dst = np.arctan2(int(cy) + y - cy, int(cx) + x - cx)
        angles.append(np.degrees(dst - src))
    assert max(abs(a) for a in angles) <= 20.0 + 1e-3
    assert len({round(a, 3) for a in angles}) == len(angles)


def test_random_distortion_layer_is_training_only_and_serializes():
    layer = aug.RandomDistortion(alpha=10.0, sigma=3.0, rotation=5.0, seed=1)
    x = tf.constant(PIXELS[:2])
    assert np.array_equal(_np(layer(x, training=False)), PIXELS[:2])
    first, second = _np(layer(x, training=True)), _np(layer(x, training=True))
    assert not np.allclose(first, PIXELS[:2]) and not np.allclose(first, second)
    clone = aug.RandomDistortion.from_config(layer.get_config())
    assert clone.params == layer.params
    with pytest.raises(KerasdlError) as error:
        aug.RandomDistortion(sigma=0)
    assert error.value.argument == "sigma"


# --- test-time augmentation -------------------------------------------------------------

def test_views_move_content_the_documented_way():
    image = np.zeros((1, H, W, 1), "float32")
    image[0, 2, 3] = 1.0
    where = lambda view: np.argwhere(aug.apply_view(image, view)[0, ..., 0]).tolist()  # noqa: E731
    assert where("hflip") == [[2, W - 1 - 3]]
    assert where("vflip") == [[H - 1 - 2, 3]]
    assert where("shift(0,5)") == [[2, 8]]
    assert where("shift(2,0)") == [[4, 3]]
    assert where("shift(-2,-3)") == [[0, 0]]
    with pytest.raises(KerasdlError) as error:
        aug.apply_view(image, "shift(1)")
    assert error.value.argument == "transforms" and "hflip" in str(error.value)


def test_tta_averages_softmax_over_views():
    def model(x):  # logits: brightness of the left and right halves
        x = np.asarray(x)
        return np.stack([x[:, :, : W // 2].mean((1, 2, 3)), x[:, :, W // 2:].mean((1, 2, 3))], 1)

    images = PIXELS[:3] / 255.0
    images[:, :, : W // 2] *= 3.0  # left halves brighter: a flip changes the logits

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    plain, flipped = softmax(model(images)), softmax(model(images[:, :, ::-1]))
    probs = aug.tta_predict(model, images, ["identity", "hflip"])
    np.testing.assert_allclose(probs, (plain + flipped) / 2, rtol=1e-5)
    assert not np.allclose(probs, plain)
    for reduce in ("max", "gmean"):
        other = aug.tta_predict(model, images, ["identity", "hflip", "shift(1,1)"], reduce)
        np.testing.assert_allclose(other.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(KerasdlError) as error:
        aug.tta_predict(model, images, ["identity"], reduce="median")
    assert error.value.argument == "reduce" and "'gmean'" in str(error.value)
    with pytest.raises(KerasdlError) as error:
        aug.tta_predict(model, images, ["identity"], from_logits=False)
    assert error.value.argument == "from_logits"
    with pytest.raises(KerasdlError) as error:
        aug.tta_predict(model, images, [])
    assert error.value.argument == "transforms"


def test_tta_with_a_keras_model_returns_probabilities():
    model = keras.Sequential([keras.Input((H, W, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    probs = aug.tta_predict(model, PIXELS[:2] / 255.0, ["identity", "vflip", "rot180"])
    assert probs.shape == (2, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


# --- the plot ---------------------------------------------------------------------------

def test_plot_shows_originals_and_seeded_views():
    from matplotlib.figure import Figure

    fig = aug.plot_augmentations(PIXELS[:2], "strong", n_views=3, seed=1, titles=["a", "b"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 4
    np.testing.assert_array_equal(np.asarray(fig.axes[0].get_images()[0].get_array()),
                                  PIXELS[0].astype("uint8"))
    views = aug.augmented_views(PIXELS[:2], "strong", n_views=3, seed=1)
    assert views.shape == (3, 2, H, W, 3)
    assert np.array_equal(views, aug.augmented_views(PIXELS[:2], "strong", 3, seed=1))
    assert not np.array_equal(views, aug.augmented_views(PIXELS[:2], "strong", 3, seed=2))
    assert not np.array_equal(views[0], views[1])
    grey = aug.plot_augmentations(PIXELS[:1, ..., 0], aug.keras_layer("rotation"), n_views=1)
    assert len(grey.axes) == 2
    with pytest.raises(KerasdlError) as error:
        aug.plot_augmentations(PIXELS[:1], 42)
    assert error.value.argument == "augment"
