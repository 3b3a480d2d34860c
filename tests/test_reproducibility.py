"""Seeded runs, resumed runs and distributed runs end where they should; a run folder is
never written among a user's own files.

Determinism (``enable_op_determinism``) and logical devices are process-wide settings,
so those checks run in a fresh Python process each. They train LeNet-5 on the embedded
digits: no dataset download, a few seconds per run.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasdl.cli import main
from kerasdl.errors import KerasdlError
from kerasdl.seeds import epoch_seed, mix_seed, seed_generators
from kerasdl.train import train


def run_script(body, tmp_path, timeout=300):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_refuses_a_folder_of_someone_elses_files(tmp_path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("my work")
    with pytest.raises(KerasdlError) as err:
        train("lenet5", "digits", output_dir=str(mine), epochs=1, verbose=0)
    assert err.value.argument == "output_dir" and "chapter1.tex" in str(err.value)
    assert sorted(os.listdir(mine)) == ["chapter1.tex"]

    assert main(["train", "lenet5", "--dataset", "digits", "--output", str(mine)]) == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "(option --output)" in message


def test_an_interrupted_generative_run_folder_is_a_run_folder(tmp_path):
    """Its sample grids are the run's own: the same command resumes it (issue 19's WGAN-GP
    was refused so, with four grids written)."""
    from kerasdl.train.runs import check_run_folder

    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    for name in ("training_log.csv", "train.log", "samples_epoch_001.png",
                 "samples_epoch_004.png", "confusion_matrix_epoch_002.csv"):
        (run / name).write_text("")
    check_run_folder(str(run))
    (run / "samples_epoch_1.png").write_text("")
    with pytest.raises(KerasdlError, match="samples_epoch_1.png"):
        check_run_folder(str(run))


def test_a_file_is_not_a_run_folder(tmp_path):
    path = tmp_path / "run"
    path.write_text("")
    with pytest.raises(KerasdlError, match="is a file"):
        train("lenet5", "digits", output_dir=str(path), epochs=1, verbose=0)


def test_unknown_strategy_is_a_clear_error(tmp_path):
    with pytest.raises(KerasdlError, match="mirrored") as err:
        train("lenet5", "digits", output_dir=str(tmp_path / "run"), strategy="tpu", verbose=0)
    assert err.value.argument == "strategy"
    assert not (tmp_path / "run").exists()


def test_epoch_seeds_differ_by_epoch_and_stream():
    seeds = {epoch_seed(0, e, s) for e in range(50) for s in range(4)}
    assert len(seeds) == 200 and all(0 <= v < 2**31 for v in seeds)
    assert epoch_seed(1, 0) != epoch_seed(0, 0)


def test_in_graph_seeds_depend_on_every_value():
    # A batch's augmentation seed: each batch index and stream its own (it once ignored
    # the last value, so every batch of a stream drew the same transforms).
    by_batch = {int(mix_seed(7, i)) for i in range(6)}
    by_stream = {int(mix_seed(7, 3, k)) for k in range(4)}
    assert len(by_batch) == 6 and len(by_stream) == 4
    assert int(mix_seed(7, 2)) == int(mix_seed(7, 2)) != int(mix_seed(8, 2))


def test_epoch_seeds_set_the_model_streams_from_the_epoch():
    import keras

    from kerasdl.train.reproducibility import EpochSeeds

    def model():
        inputs = keras.Input((8,))
        x = keras.layers.Dropout(0.5)(keras.layers.Dense(8)(inputs))
        return keras.Model(inputs, keras.layers.Dropout(0.5)(x))

    states = []
    for _ in range(2):
        m = model()
        callback = EpochSeeds(seed=3)
        callback.set_model(m)
        callback.on_train_begin()
        callback.on_epoch_begin(7)
        states.append([np.asarray(g.state.value) for g in seed_generators(m)])
    assert len(states[0]) == 2
    assert all(np.array_equal(a, b) for a, b in zip(*states))  # same epoch, same draws
    assert not np.array_equal(states[0][0], states[0][1])  # two streams, two states


def test_deterministic_runs_and_an_interrupted_run_end_with_the_same_weights(tmp_path):
    result = run_script("""
        import json, keras, numpy as np
        from kerasdl.train import get_recipe, load_run, train

        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    raise KeyboardInterrupt

        recipe = get_recipe("lenet5").replace(epochs=3, batch_size=64)
        assert recipe.augmentation != "none"
        def run(name, **kw):
            train("lenet5", "digits", output_dir=name, recipe=recipe, max_examples=512,
                  deterministic=True, verbose=0, **kw)
            return load_run(name)[0].get_weights()
        a, b = run("a"), run("b")
        try:
            run("c", callbacks=[Kill()])
        except KeyboardInterrupt:
            pass
        c = run("c")
        other = run("d", seed=1)
        same = lambda x, y: all(np.array_equal(u, v) for u, v in zip(x, y))
        print(json.dumps({"repeat": same(a, b), "resumed": same(a, c),
                          "other_seed": same(a, other)}))
    """, tmp_path)
    assert result == {"repeat": True, "resumed": True, "other_seed": False}


def test_mirrored_strategy_over_two_cpus_matches_one_device(tmp_path):
    result = run_script("""
        import json
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import numpy as np
        from kerasdl.train import get_recipe, load_run, train

        # One batch per epoch: the mean gradient does not depend on the order of the
        # examples, which tf.distribute's copy of the shuffled pipeline draws differently.
        recipe = get_recipe("lenet5").replace(epochs=3, batch_size=512, augmentation="none",
                                              validation_fraction=0.0)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        record = train("lenet5", "digits", output_dir="two", recipe=recipe,
                       max_examples=512, strategy=strategy, verbose=0)
        train("lenet5", "digits", output_dir="one", recipe=recipe, max_examples=512,
              verbose=0)
        two, one = load_run("two")[0].get_weights(), load_run("one")[0].get_weights()
        print(json.dumps({
            "replicas": record["replicas"],
            "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(two, one)),
            "moved": max(float(np.abs(a).max()) for a in one),
        }))
    """, tmp_path)
    assert result["replicas"] == 2
    assert result["moved"] > 0
    assert result["max_diff"] < 1e-4, result
