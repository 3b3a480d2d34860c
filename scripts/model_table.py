"""Print the README's model table from the registry: every registered model (test-only
models excluded) with its parameter count at its defaults, built here.

    .venv/bin/python scripts/model_table.py > /tmp/table.md
"""

import gc

import kerasdl


def main():
    print("| model | params | what it is | reference counts |")
    print("|---|---:|---|---|")
    for name in kerasdl.list_models():
        info = kerasdl.model_info(name)
        if info.family == "test":
            continue
        model = kerasdl.create_model(name)
        refs = "; ".join(
            f"{getattr(ref, 'count', ref):,}"
            f"{' trainable' if getattr(ref, 'trainable_only', False) else ''}: {source}"
            for source, ref in info.reference_params.items()
        ) or "-"
        print(f"| `{name}` | {model.count_params():,} | {info.description} | {refs} |")
        del model
        gc.collect()


if __name__ == "__main__":
    main()
