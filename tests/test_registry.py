"""The string registry: create_model, list_models, model_info, register_model."""

from __future__ import annotations

import types

import keras
import pytest

import kerasdl
from kerasdl import registry
from kerasdl.errors import InvalidArgumentError, KerasdlError
from kerasdl.models.cnn.lenet import LeNet5Config, build_lenet5
from kerasdl.registry import InputDecl, Variant, resolve_template
from tests.contract_models import TEST_MODELS

SEED_CNNS = {"lenet5", "lenet5_modern", "basic_cnn", "simple_cnn"}


@pytest.fixture
def isolated_registry(monkeypatch):
    """A copy of the registry, so registrations made by a test do not leak."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return registry._REGISTRY


# ------------------------------------------------------------------- create_model


def test_create_model_passes_overrides_to_builder():
    model = kerasdl.create_model("lenet5", num_classes=7, name="my_lenet")
    assert isinstance(model, keras.Model)
    assert model.name == "my_lenet"
    assert model.output_shape == (None, 7)


def test_names_are_case_insensitive():
    assert kerasdl.model_info("LeNet5").name == "lenet5"


@pytest.mark.parametrize("lookup", [kerasdl.create_model, kerasdl.model_info])
def test_unknown_name_raises_value_error_with_close_names(lookup):
    with pytest.raises(ValueError) as excinfo:
        lookup("lenet")
    message = str(excinfo.value)
    assert "'lenet'" in message
    assert "lenet5" in message
    assert "list_models" in message


def test_unknown_name_far_from_everything_still_explains():
    with pytest.raises(ValueError, match="Unknown model name 'zzzzzzqqqq'"):
        kerasdl.create_model("zzzzzzqqqq")


def test_non_string_name_raises_type_error():
    with pytest.raises(TypeError):
        kerasdl.model_info(5)


def test_bad_kwarg_raises_type_error_naming_it():
    with pytest.raises(TypeError) as excinfo:
        kerasdl.create_model("lenet5", num_clases=3)
    message = str(excinfo.value)
    assert "num_clases" in message
    assert "num_classes" in message  # lists the valid arguments


def test_bad_kwarg_value_raises_value_error():
    with pytest.raises(ValueError, match="num_classes"):
        kerasdl.create_model("lenet5", num_classes=0)


# ------------------------------------------------------------------- list_models


def test_list_models_is_sorted_and_contains_seed_and_test_models():
    names = kerasdl.list_models()
    assert names == sorted(names, key=registry.natural_key)
    assert len(names) == len(set(names))
    assert SEED_CNNS <= set(names)
    assert set(TEST_MODELS) <= set(names)


def test_list_models_pattern():
    assert kerasdl.list_models("lenet*") == ["lenet5", "lenet5_modern"]
    assert kerasdl.list_models("LENET*") == ["lenet5", "lenet5_modern"]
    assert kerasdl.list_models("lenet5") == ["lenet5"]
    assert kerasdl.list_models("no_such_*") == []


def test_list_models_family():
    cnn = set(kerasdl.list_models(family="cnn"))
    assert SEED_CNNS <= cnn
    assert not cnn & set(TEST_MODELS)
    assert set(kerasdl.list_models(family="test")) == set(TEST_MODELS)
    with pytest.raises(KerasdlError, match="family must be one of .*'cnn'"):
        kerasdl.list_models(family="no_such_family")
    with pytest.raises(KerasdlError, match="task must be one of"):
        kerasdl.list_models(task="cooking")


def test_list_models_task():
    image = set(kerasdl.list_models(task="image_classification"))
    assert SEED_CNNS <= image
    assert not image & set(TEST_MODELS)
    assert set(kerasdl.list_models(task="test")) == set(TEST_MODELS)


def test_list_models_tags_need_every_tag():
    mnist = set(kerasdl.list_models(tags="mnist"))
    assert SEED_CNNS <= mnist
    # lenet5 is tagged mnist but not seed; a model must carry every tag given.
    assert set(kerasdl.list_models(tags=["mnist", "seed"])) == {"basic_cnn", "simple_cnn"}
    assert kerasdl.list_models(tags=("classic", "seed")) == []
    assert "test_mobile_cnn" in kerasdl.list_models(tags="mobile")
    assert "lenet5" not in kerasdl.list_models(tags="mobile")


def test_list_models_filters_combine():
    assert kerasdl.list_models("*cnn*", family="cnn", tags="seed") == ["basic_cnn", "simple_cnn"]
    assert kerasdl.list_models("*lenet*", tags="classic") == ["lenet5"]
    assert kerasdl.list_models("*lenet*", task="test") == []


def test_every_listed_model_has_a_consistent_record():
    for name in kerasdl.list_models():
        info = kerasdl.model_info(name)
        assert info.name == name
        assert info.task in registry.TASKS
        assert info.target in registry.TARGETS
        assert len(info.inputs) >= 1
        # test_kwargs and reference_kwargs must be real builder arguments.
        defaults = info.default_kwargs()
        for kwargs in (info.test_kwargs, info.reference_kwargs):
            unknown = set(kwargs) - set(defaults)
            assert not unknown, f"{name}: unknown builder arguments {unknown}"


# ------------------------------------------------------------------- model_info


def test_lenet5_model_info():
    info = kerasdl.model_info("lenet5")
    assert isinstance(info, kerasdl.ModelInfo)
    assert info.name == "lenet5"
    assert info.family == "cnn"
    assert info.task == "image_classification"
    assert info.default_input_shape == (32, 32, 1)
    assert "LeCun" in info.paper and "1998" in info.paper
    assert list(info.reference_params.values()) == [60_850]
    assert info.target == "classes"
    assert info.output_shape == ("num_classes",)
    assert "classic" in info.tags
    assert info.description  # shown by `kerasdl list`
    defaults = info.default_kwargs()
    assert defaults["input_shape"] == (32, 32, 1)
    assert defaults["num_classes"] == 10
    resolved = info.resolved_kwargs(num_classes=3)
    assert resolved["num_classes"] == 3 and resolved["input_shape"] == (32, 32, 1)
    assert defaults["num_classes"] == 10  # resolving does not change the defaults


def test_description_defaults_to_first_docstring_line(isolated_registry):
    @kerasdl.register_model("tmp_described", family="test", task="test")
    def tmp_described(num_classes=2):
        """First line.

        More text."""

    assert kerasdl.model_info("tmp_described").description == "First line."


# ------------------------------------------------------------------- register_model


def test_duplicate_name_with_different_function_raises(isolated_registry):
    original = isolated_registry["lenet5"]

    with pytest.raises(ValueError, match="already registered"):

        @kerasdl.register_model("lenet5", family="cnn", task="image_classification")
        def other_builder(num_classes=10):
            return None

    assert kerasdl.model_info("lenet5") is original


def test_duplicate_name_same_qualname_other_module_raises(isolated_registry):
    """A different function that happens to share the name and qualname of the registered
    builder (e.g. ``def lenet5`` in another module) must not silently replace it."""
    original = isolated_registry["lenet5"]
    impostor = types.FunctionType(
        original.builder.__code__, {"__name__": "somewhere.else"}, "lenet5"
    )
    impostor.__qualname__ = original.builder.__qualname__
    impostor.__module__ = "somewhere.else"
    with pytest.raises(ValueError, match="already registered"):
        kerasdl.register_model("lenet5", family="cnn", task="image_classification")(impostor)
    assert kerasdl.model_info("lenet5") is original


def test_reregistering_the_same_row_is_allowed_but_not_another(isolated_registry):
    info = isolated_registry["lenet5"]
    kerasdl.register_family(info.builder, [Variant("lenet5", info.config)],
                            family="cnn", task="image_classification")
    assert kerasdl.model_info("lenet5").builder is info.builder
    with pytest.raises(KerasdlError, match="already registered"):
        kerasdl.register_family(info.builder, [Variant("lenet5", LeNet5Config(activation="tanh"))],
                                family="cnn", task="image_classification")


# ------------------------------------------------------------------- variants as data


def test_lenet_variants_are_rows_of_one_family_builder():
    classic, modern = kerasdl.model_info("lenet5"), kerasdl.model_info("lenet5_modern")
    assert classic.builder is modern.builder is build_lenet5
    assert classic.config == LeNet5Config("scaled_tanh", "trainable", True)
    assert modern.config == LeNet5Config("relu", "max", False)
    assert classic.defaults["input_scaling"] == "lenet"
    assert kerasdl.model_info("basic_cnn").builder is kerasdl.model_info("simple_cnn").builder


def test_adding_a_variant_is_one_row(isolated_registry):
    kerasdl.register_family(
        build_lenet5,
        [Variant("lenet5_tanh_avg", LeNet5Config(activation="tanh", subsampling="avg"),
                 reference_params={"C3 partial (1,516) with plain pooling: 60,850 - 12 - 32": 60_806})],
        family="cnn", task="image_classification",
    )
    model = kerasdl.create_model("lenet5_tanh_avg")
    assert model.name == "lenet5_tanh_avg"
    assert model.count_params() == 60_806
    assert model.get_layer("c1_act").get_config()["activation"] == "tanh"
    assert kerasdl.model_info("lenet5_tanh_avg").default_kwargs()["subsampling"] == "avg"


def test_settings_are_overridable_like_any_argument():
    model = kerasdl.create_model("lenet5", activation="relu", connection_table=False)
    assert model.count_params() == 61_750  # 60,850 - 1,516 (Table I C3) + 2,416 (full C3)
    assert isinstance(model.get_layer("c3"), keras.layers.Conv2D)
    defaults = kerasdl.model_info("lenet5").default_kwargs()
    assert defaults["activation"] == "scaled_tanh" and defaults["name"] == "lenet5"
    with pytest.raises(KerasdlError, match="activation must be one of"):
        kerasdl.create_model("lenet5", activation="swishy")
    with pytest.raises(InvalidArgumentError) as err:
        kerasdl.create_model("lenet5", activaton="relu")
    assert "activation" in str(err.value) and isinstance(err.value, TypeError)


def test_list_models_sorts_naturally(isolated_registry):
    for n in ("tmp_net101", "tmp_net18", "tmp_net34", "tmp_net2"):
        kerasdl.register_model(n, family="test", task="test")(lambda num_classes=2: None)
    assert kerasdl.list_models("tmp_net*") == ["tmp_net2", "tmp_net18", "tmp_net34", "tmp_net101"]


def test_is_model():
    assert kerasdl.is_model("lenet5") and kerasdl.is_model("LeNet5_Modern")
    assert not kerasdl.is_model("lenet") and not kerasdl.is_model(5)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("Upper", {}, "lower-case"),
        ("", {}, "lower-case"),
        ("tmp_bad_task", {"task": "cooking"}, "task"),
        ("tmp_bad_target", {"target": "vibes"}, "target"),
    ],
)
def test_register_model_validates(isolated_registry, name, kwargs, match):
    args = {"family": "test", "task": "test", **kwargs}
    with pytest.raises(ValueError, match=match):
        kerasdl.register_model(name, **args)


def test_input_decl_kind_is_validated():
    with pytest.raises(ValueError, match="kind"):
        InputDecl("text", 0, 5)


# ------------------------------------------------------------------- resolve_template


def test_resolve_template():
    kwargs = {"num_classes": 4, "vocab_size": 9}
    assert resolve_template(("num_classes",), kwargs) == (4,)
    assert resolve_template((None, "vocab_size"), kwargs) == (None, 9)
    assert resolve_template([("num_classes",), (2, None)], kwargs) == [(4,), (2, None)]
    with pytest.raises(KeyError):
        resolve_template(("hidden_dim",), kwargs)
