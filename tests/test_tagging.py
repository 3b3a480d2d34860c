"""Token tagging: CoNLL-style files, aligned targets, BIO spans, and a tagger trained by
kerasdl train and evaluated from its run folder."""

import json
import os

import numpy as np
import pytest

from kerasdl.data.text import TAG_PADDING, load_token_classification, read_conll
from kerasdl.errors import DataNotFoundError, KerasdlError
from kerasdl.tasks.text import tag_spans

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
in IN B-PP O
U.S. NNP B-NP B-LOC
"""

CONLLU = """# sent_id = 1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_
"""


def test_read_conll_takes_the_last_column_and_skips_docstart(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL)
    sentences = read_conll(path)
    assert sentences == [
        (["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
        (["Peter", "Blackburn", "in", "U.S."], ["B-PER", "I-PER", "O", "B-LOC"]),
    ]
    # Another column: the part-of-speech tags.
    assert read_conll(path, column=1)[1][1] == ["NNP", "NNP", "IN", "NNP"]
    with pytest.raises(KerasdlError) as info:
        read_conll(path, column=7)
    assert info.value.argument == "dataset" and "line 3" in str(info.value)


def test_read_conllu_uses_form_and_upos_without_multiword_rows(tmp_path):
    path = tmp_path / "en-ud-train.conllu"
    path.write_text(CONLLU)
    assert read_conll(path) == [(["I", "do", "n't", "know", "."],
                                 ["PRON", "AUX", "PART", "VERB", "PUNCT"])]
    assert read_conll(path, column=4)[0][1] == ["PRP", "VBP", "RB", "VB", "."]


def test_tag_spans_follow_conlls_rules():
    assert tag_spans(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 2), ("LOC", 3, 4)}
    # An I- that does not continue its type opens a span; B- always does.
    assert tag_spans(["I-ORG", "I-ORG", "B-ORG", "I-LOC"]) == {
        ("ORG", 0, 2), ("ORG", 2, 3), ("LOC", 3, 4)}
    assert tag_spans(["O", "O"]) == set()


def _write_corpus(folder, sentences_per_split=(240, 30, 30), seed=0):
    """Sentences whose tags follow from the words: names are PER, cities LOC ("new york"
    a two-token LOC), everything else O."""
    rng = np.random.default_rng(seed)
    names, cities = ["anna", "boris", "chen", "dmitri"], ["paris", "rome", "oslo"]
    fillers = ["met", "in", "the", "and", "saw", "near", "today"]
    os.makedirs(folder, exist_ok=True)
    for split, n in zip(("train", "dev", "test"), sentences_per_split):
        lines = []
        for _ in range(n):
            for _ in range(int(rng.integers(3, 9))):
                r = rng.random()
                if r < 0.2:
                    lines.append(f"{rng.choice(names).title()} B-PER")
                elif r < 0.35:
                    lines.append(f"{rng.choice(cities).title()} B-LOC")
                elif r < 0.45:
                    lines += ["New B-LOC", "York I-LOC"]
                else:
                    lines.append(f"{rng.choice(fillers)} O")
            lines.append("")
        (folder / f"{split}.txt").write_text("\n".join(lines))


def test_loader_keeps_tokens_whole_and_pads_targets(tmp_path):
    path = tmp_path / "news.txt"
    path.write_text(CONLL + "\n" + "\n\n".join(f"word{i} O" for i in range(38)))
    data = load_token_classification(str(path), sequence_length=6, batch_size=4)
    assert data.class_names == ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    assert data.num_examples == {"train": 36, "validation": 2, "test": 2}
    x, y = data.arrays("train")
    assert x.shape == (36, 6) and x.dtype == np.int32
    # "U.S." stays one (lower-cased) token, so each tag stays on its word (the training
    # split is shuffled: find the sentence).
    texts = [data.codec.decode(row) for row in x]
    i = texts.index("peter blackburn in u.s.")
    assert list(y[i]) == [3, 4, 5, 0, TAG_PADDING, TAG_PADDING]
    assert list(x[i][4:]) == [0, 0]
    j = texts.index("eu rejects german call .")
    assert list(y[j]) == [2, 5, 1, 5, 5, TAG_PADDING]
    # Longer sentences are cut to sequence_length with their tags.
    short = load_token_classification(str(path), sequence_length=3, batch_size=4)
    x, y = short.arrays("train")
    texts = [short.codec.decode(row) for row in x]
    assert list(y[texts.index("peter blackburn in")]) == [3, 4, 5]
    # A folder without a training file, and a missing path, are data errors.
    with pytest.raises(DataNotFoundError):
        load_token_classification(str(tmp_path / "nothing_here"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError):
        load_token_classification(str(tmp_path / "empty"))


def test_a_tag_training_never_saw_is_refused(tmp_path):
    _write_corpus(tmp_path / "corpus", (20, 5, 5))
    with open(tmp_path / "corpus" / "test.txt", "a") as f:
        f.write("\nBerlin B-GPE\n")
    with pytest.raises(KerasdlError) as info:
        load_token_classification(str(tmp_path / "corpus"))
    assert info.value.argument == "dataset" and "'B-GPE'" in str(info.value)


def test_a_bilstm_tagger_learns_entities_through_kerasdl_train(tmp_path):
    from kerasdl.train import evaluate, get_recipe, train

    corpus = tmp_path / "corpus"
    _write_corpus(corpus)
    recipe = get_recipe("bilstm_tagger").replace(epochs=6, learning_rate=1e-2,
                                                 batch_size=16, sequence_length=12)
    record = train("bilstm_tagger", str(corpus), output_dir=tmp_path / "run", recipe=recipe,
                   model_kwargs={"embedding_dim": 16, "units": 16}, verbose=0)
    assert record["task"] == "token_classification"
    assert record["class_names"] == ["B-LOC", "B-PER", "I-LOC", "O"]
    assert record["test_token_accuracy"] > 0.95 and record["test_entity_f1"] > 0.9
    # Evaluating the saved run on part of the corpus keeps the trained tag order even
    # though those sentences need not hold every tag.
    saved = json.loads((tmp_path / "run" / "vocabulary.json").read_text())
    assert saved["tags"]["vocabulary"][2:] == record["class_names"]
    again = evaluate(tmp_path / "run", max_examples=5)
    assert again["test_examples"] == 5 and 0.0 <= again["test_entity_f1"] <= 1.0
    assert "entity F1" in again["summary"]
