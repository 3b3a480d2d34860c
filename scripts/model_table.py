"""Print the README's model table from the registry: every registered model (test-only
models excluded) with its parameter count, multiply-accumulates per example, depth in
weighted layers and receptive field (:mod:`kerasdl.analysis`) at its defaults, built here.

    .venv/bin/python scripts/model_table.py > /tmp/table.md
"""

import gc

import kerasdl
from kerasdl.analysis import counting_model, summarize


def main():
    print("| model | input | params | GMACs | depth | receptive field | what it is | reference counts |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for name in kerasdl.list_models():
        info = kerasdl.model_info(name)
        if info.family == "test":
            continue
        model, _ = counting_model(info)
        refs = "; ".join(
            f"{getattr(ref, 'count', ref):,}"
            f"{' trainable' if getattr(ref, 'trainable_only', False) else ''}: {source}"
            for source, ref in info.reference_params.items()
        ) or "-"
        s = summarize(model)
        field = s["receptive_field"]
        shapes = [tuple(t.shape) for t in model.inputs]
        size = " + ".join("x".join(str(d) for d in shape[1:]) or "scalar" for shape in shapes)
        print(f"| `{name}` | {size} | {s['parameters']:,} | {s['macs'] / 1e9:.3g} | "
              f"{s['depth']} | {field.size[0] if field else '-'} | {info.description} | {refs} |")
        del model
        gc.collect()


if __name__ == "__main__":
    main()
