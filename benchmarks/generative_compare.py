"""Issue 19's comparison of the generative models trained on MNIST: the Fréchet distance
of their samples to the MNIST test set in the feature space of a kerasdl LeNet-5
(``kerasdl.generative_metrics``; not the papers' FID), that classifier's mean confidence
and the entropy of its predicted-class histogram on the samples, and the sampling time.

Every row scores the same number of images against the same reference (the 10,000 test
images through the same classifier run), so its distances compare with one another (the
estimate is biased upwards at small sample counts: the real-images row gives the floor).
Rows:

- real MNIST training images (the floor of the distance at this sample count);
- a randomly initialised DCGAN generator (seed 0): the issue's baseline, which a trained
  DCGAN must beat by at least 5x;
- each finished run: ``vae_conv`` (the decoder's Bernoulli means), ``dcgan``, ``wgan_gp``
  (``saved_models/MODEL_mnist``, as ``benchmarks/long_runs.sh gan`` trains them) and
  ``ddpm_unet`` sampled with DDIM (50 steps); with ``--ancestral N`` also the DDPM's
  1,000-step ancestral sampler on N images (a separate sample count, so its distance is
  only comparable with rows of the same count: run the script with ``--num-samples N``
  for those).

A run folder that is missing is reported and left out. Sampling time is wall clock on
this machine after one warm-up batch, in chunks of ``--batch`` images.

    python benchmarks/generative_compare.py      # writes benchmarks/results/generative_mnist.json
    python benchmarks/generative_compare.py --smoke   # 64 images, output to a temp folder
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
from _common import load_average, machine, timed, versions

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUNS = {"vae_conv": "vae_conv_mnist", "dcgan": "dcgan_mnist", "wgan_gp": "wgan_gp_mnist",
        "ddpm_unet": "ddpm_unet_mnist"}
TARGET_RATIO = 5.0  # issue 19: DCGAN's distance at least 5x below a random generator's
TARGET_CONFIDENCE = 0.8


def generate_in_chunks(generate, n, batch):
    """``generate(count, seed)`` called on chunks of ``batch`` images, seeds 0, 1, ...;
    the first chunk once more beforehand (untimed) so that tracing is not timed."""
    generate(min(batch, n), 10_000)

    def run():
        sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
        return np.concatenate([np.asarray(generate(size, seed))
                               for seed, size in enumerate(sizes)])
    return timed(run)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=None,
                        help="images per row (default 2000; smoke: 64)")
    parser.add_argument("--ancestral", type=int, default=0,
                        help="also sample N images with the DDPM's 1,000-step ancestral "
                             "sampler (slow: about 10 s per image on 2 CPU cores)")
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=250, help="images per generation call")
    parser.add_argument("--runs-dir", default=os.path.join(ROOT, "saved_models"))
    parser.add_argument("--classifier-run", default=None,
                        help="the LeNet-5 run whose features are used (default "
                             "saved_models/lenet5_mnist, trained first when missing)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--output", default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    n = args.num_samples or (64 if args.smoke else 2000)
    output = args.output or (
        os.path.join(tempfile.mkdtemp(prefix="generative_smoke_"), "generative_mnist.json")
        if args.smoke else os.path.join(HERE, "results", "generative_mnist.json"))

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import kerasdl
    from kerasdl.generative_metrics import GenerativeScorer, reference_classifier
    from kerasdl.tasks import get_task
    from kerasdl.train import get_recipe, load_run
    from kerasdl.train.runs import is_finished_run

    if args.smoke:  # a one-epoch classifier on 512 images, in the temporary folder
        classifier_run = args.classifier_run or os.path.join(os.path.dirname(output),
                                                             "lenet5_mnist")
        classifier, classifier_record = reference_classifier(
            "mnist", classifier_run, epochs=1, max_examples=512, verbose=0)
    else:
        classifier_run = args.classifier_run or os.path.join(args.runs_dir, "lenet5_mnist")
        classifier, classifier_record = reference_classifier("mnist", classifier_run)
    data = get_task("generation").load_data(
        "mnist", input_shape=(28, 28, 1), batch_size=256, recipe=get_recipe("dcgan"),
        max_examples=max(n, 256) if args.smoke else None)
    test_images, _ = data.arrays("test")
    train_images, _ = data.arrays("train")
    print(f"reference: {len(test_images)} MNIST test images through {classifier_run} "
          f"(test accuracy {classifier_record.get('test_accuracy')})", flush=True)
    scorer = GenerativeScorer(classifier, test_images)

    rows, missing = [], []

    def add(name, sampler, seconds, images, note=""):
        score = scorer.score(images)
        row = {"model": name, "sampler": sampler, **score,
               "sampling_seconds": None if seconds is None else round(seconds, 2),
               "ms_per_image": None if seconds is None else round(1000 * seconds / len(images), 2),
               "note": note}
        rows.append(row)
        print(f"{name:>24} {sampler:>22}: distance {score['frechet_distance']:9.2f}, "
              f"confidence {score['mean_confidence']:.3f}, entropy "
              f"{score['class_histogram_entropy']:.3f}"
              + ("" if seconds is None else f", {1000 * seconds / len(images):.2f} ms/image"),
              flush=True)

    real = np.random.default_rng(0).permutation(len(train_images))[:n]
    add("MNIST training images", "-", None, train_images[real] / 255.0,
        "real images: the distance's floor at this sample count")

    keras.utils.set_random_seed(0)
    random_gan = kerasdl.create_model("dcgan")
    seconds, _, images = generate_in_chunks(
        lambda count, seed: random_gan.generate(count, seed=seed), n, args.batch)
    add("dcgan (random weights)", "generator", seconds, images,
        "the issue's baseline: create_model('dcgan') after keras.utils.set_random_seed(0)")
    random_distance = rows[-1]["frechet_distance"]

    models = {}
    for name, folder in RUNS.items():
        run_dir = os.path.join(args.runs_dir, folder)
        if not is_finished_run(run_dir):
            missing.append(run_dir)
            print(f"{run_dir}: no finished run, left out", flush=True)
            continue
        models[name] = load_run(run_dir)

    for name in ("vae_conv", "dcgan", "wgan_gp"):
        if name in models:
            model = models[name][0]
            seconds, _, images = generate_in_chunks(
                lambda count, seed, m=model: m.generate(count, seed=seed), n, args.batch)
            add(name, "decoder (Bernoulli means)" if name == "vae_conv" else "generator",
                seconds, images)
    if "ddpm_unet" in models:
        ddpm = models["ddpm_unet"][0]
        seconds, _, images = generate_in_chunks(
            lambda count, seed: ddpm.generate(count, seed=seed, method="ddim",
                                              steps=args.ddim_steps), n, args.batch)
        add("ddpm_unet", f"DDIM, {args.ddim_steps} steps", seconds, images)
        if args.ancestral:
            seconds, _, images = generate_in_chunks(
                lambda count, seed: ddpm.generate(count, seed=seed, method="ddpm"),
                args.ancestral, args.batch)
            add("ddpm_unet", f"ancestral, {ddpm.timesteps} steps", seconds, images,
                f"{args.ancestral} images: compare only with rows of that sample count")

    for row in rows:
        row["distance_vs_random_generator"] = round(random_distance / row["frechet_distance"], 2) \
            if row["frechet_distance"] > 0 else None
    dcgan_row = next((r for r in rows if r["model"] == "dcgan"), None)
    targets = None
    if dcgan_row is not None:
        targets = {
            "dcgan_distance_ratio": dcgan_row["distance_vs_random_generator"],
            "dcgan_distance_ratio_target": TARGET_RATIO,
            "dcgan_mean_confidence": dcgan_row["mean_confidence"],
            "dcgan_mean_confidence_target": TARGET_CONFIDENCE,
            "met": bool(dcgan_row["distance_vs_random_generator"] >= TARGET_RATIO
                        and dcgan_row["mean_confidence"] >= TARGET_CONFIDENCE)}

    command = "python benchmarks/generative_compare.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    result = {
        "command": command.strip(), "machine": machine(), "versions": versions(),
        "load_average_after": load_average(), "smoke": args.smoke,
        "num_samples": n,
        "reference": {"images": f"MNIST test split, {len(test_images)} images",
                      "classifier_run": os.path.relpath(classifier_run, ROOT),
                      "classifier_test_accuracy": classifier_record.get("test_accuracy"),
                      "features": "input of the classifier's last Dense layer (LeNet-5's "
                                  "84 F6 units)",
                      "real_test_images": scorer.reference},
        "distance": "squared Fréchet distance between Gaussians fitted to the classifier's "
                    "features (kerasdl.generative_metrics); not comparable with a "
                    "published FID",
        "sampling_time": f"wall clock, chunks of {args.batch} images, after an untimed "
                         "warm-up chunk",
        "runs": {name: {"run_dir": os.path.relpath(os.path.join(args.runs_dir, RUNS[name]),
                                                   ROOT),
                        "epochs": record.get("recipe", {}).get("epochs"),
                        "parameters": record.get("parameters")}
                 for name, (_, record) in models.items()},
        "missing_runs": [os.path.relpath(m, ROOT) for m in missing],
        "targets": targets, "results": rows}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(output + ".tmp", output)

    print()
    print("| model | sampler | Fréchet distance | random / this | mean confidence "
          "| class entropy (nats) | ms per image |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = "-" if r["ms_per_image"] is None else f"{r['ms_per_image']:.2f}"
        print(f"| {r['model']} | {r['sampler']} | {r['frechet_distance']:.2f} | "
              f"{r['distance_vs_random_generator']} | {r['mean_confidence']:.3f} | "
              f"{r['class_histogram_entropy']:.3f} | {ms} |")
    print(f"\nreal test images: confidence {scorer.reference['mean_confidence']:.3f}, "
          f"entropy {scorer.reference['class_histogram_entropy']:.3f} (log 10 = 2.303)")
    if targets:
        print(f"DCGAN target (>= {TARGET_RATIO}x, confidence >= {TARGET_CONFIDENCE}): "
              f"{'met' if targets['met'] else 'NOT met'}")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
