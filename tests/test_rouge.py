"""The project's ROUGE module: same numbers as rouge_score called directly, and it loads offline."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from rouge_score import rouge_scorer

from utils import evaluation

TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]

# (prediction, references): several sentences, inflections for the stemmer, one and several references.
EXAMPLES = [
    ("The cat sat on the mat. It was happy!", ["A cat was sitting on the mat. The cat looked happy."]),
    ("#Person1# asks about the train times. #Person2# says it leaves at nine.",
     ["#Person1# asked when the train leaves? #Person2# told them nine o'clock.",
      "Person1 wants the train schedule and learns it departs at 9.",
      "They talk about trains."]),
    ("They talked about dinner plans", ["The two friends are talking about plans for dinner.", "Dinner talk."]),
    ("Completely unrelated words here.", ["Nothing in common at all", "Zero overlap again."]),
    ("", ["An empty prediction scores zero."]),
]


def split(text):
    """Sentence splitting written out independently of the module: one sentence per line."""
    out, sentence = [], []
    for word in text.split():
        sentence.append(word)
        if word[-1] in ".!?":
            out.append(" ".join(sentence))
            sentence = []
    if sentence:
        out.append(" ".join(sentence))
    return "\n".join(out)


def direct_scores(prediction, references):
    """rouge_score called directly: best reference per type, Lsum on newline-separated sentences."""
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=True)
    plain = scorer.score_multi(references, prediction)
    lsum = scorer.score_multi([split(r) for r in references], split(prediction))
    return {t: (lsum if t == "rougeLsum" else plain)[t].fmeasure for t in TYPES}


def test_per_example_scores_equal_rouge_score():
    predictions = [p for p, _ in EXAMPLES]
    references = [r for _, r in EXAMPLES]
    ours = evaluation.rouge_per_example(predictions, references)
    for i, (prediction, refs) in enumerate(EXAMPLES):
        expected = direct_scores(prediction, refs)
        for rouge_type in TYPES:
            assert ours[rouge_type][i] == pytest.approx(expected[rouge_type], abs=1e-12), (i, rouge_type)
    assert ours["rouge1"][3] == 0.0 and ours["rouge1"][4] == 0.0
    assert ours["rouge1"][0] > 0.3


def test_single_string_reference_equals_plain_score():
    prediction, reference = EXAMPLES[0][0], EXAMPLES[0][1][0]
    ours = evaluation.rouge_per_example([prediction], [reference])
    direct = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(reference, prediction)
    for rouge_type, score in direct.items():
        assert ours[rouge_type][0] == pytest.approx(score.fmeasure)


def test_best_reference_counts():
    prediction = "the meeting moved to friday"
    single = evaluation.rouge_per_example([prediction] * 2, ["a dog barked", "the meeting moved to friday"])
    multi = evaluation.rouge_per_example([prediction], [["a dog barked", "the meeting moved to friday"]])
    assert single["rouge1"].tolist() == [0.0, 1.0]
    assert multi["rouge1"][0] == 1.0


def test_stemming_is_on_by_default():
    rouge = evaluation.load_rouge()
    stemmed = rouge.compute(predictions=["they talked"], references=["they talking"])["rouge1"]
    unstemmed = rouge.compute(predictions=["they talked"], references=["they talking"], use_stemmer=False)["rouge1"]
    assert stemmed == 1.0
    assert unstemmed == pytest.approx(0.5)


def test_lsum_uses_sentences():
    rouge = evaluation.load_rouge()
    kwargs = dict(predictions=["The cat sat. The dog ran."], references=["The dog ran. The cat sat."])
    split_scores = rouge.compute(**kwargs)
    unsplit = rouge.compute(**kwargs, split_sentences=False)
    assert split_scores["rougeLsum"] == pytest.approx(1.0)
    assert split_scores["rougeL"] < 0.6
    assert unsplit["rougeLsum"] == pytest.approx(unsplit["rougeL"])  # the reference lab's mistake


def test_sentence_lines():
    module = sys.modules[type(evaluation.load_rouge()).__module__]
    assert module.sentence_lines("Hi there. How are you?  Fine!\nOk") == "Hi there.\nHow are you?\nFine!\nOk"
    assert module.sentence_lines("Version 2.5 is out.") == "Version 2.5 is out."


def test_aggregate_is_mean_of_per_example():
    predictions = [p for p, _ in EXAMPLES]
    references = [r for _, r in EXAMPLES]
    rouge = evaluation.load_rouge()
    aggregated = rouge.compute(predictions=predictions, references=references)
    per_example = evaluation.rouge_per_example(predictions, references)
    for rouge_type in TYPES:
        assert aggregated[rouge_type] == pytest.approx(np.mean(per_example[rouge_type]))
    assert rouge.compute(predictions=predictions, references=references) == aggregated  # no random bootstrap


def test_load_is_cached_and_described():
    rouge = evaluation.load_rouge()
    assert rouge is evaluation.load_rouge()
    assert "ROUGE" in rouge.description and "Lin" in rouge.citation and "use_stemmer" in rouge.inputs_description


def test_bad_input_says_what_to_do():
    with pytest.raises(ValueError, match="one reference"):
        evaluation.rouge_per_example(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="list"):
        evaluation.rouge_per_example("a prediction", ["a"])


def test_loads_offline_by_path(tmp_path):
    """A fresh process, empty caches, Hub and network switched off: the module still loads and scores."""
    code = textwrap.dedent(f"""
        import evaluate
        rouge = evaluate.load({str(evaluation.ROUGE_DIR)!r})
        print(rouge.compute(predictions=["the cat sat"], references=[["a cat sat", "the cat sat"]])["rouge1"])
    """)
    env = dict(os.environ, HF_EVALUATE_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               HF_DATASETS_OFFLINE="1", HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) == 1.0


def _metric_module():
    return sys.modules[type(evaluation.load_rouge()).__module__]


def test_the_remembering_tokenizer_gives_rouge_scores_own_tokens():
    from rouge_score import tokenizers

    texts = [text for prediction, refs in EXAMPLES for text in (prediction, *refs)] + [
        "Running, runs & ran: 7:30 pm, $45.99, e-mail!", "Café naïve résumé £5 €10", "I a an it's CAPS  tabs\there",
        "#Person2# cancelled the cancellation; generously generalized generalizations."]
    for stem in (True, False):
        ours, theirs = _metric_module().RememberingTokenizer(stem), tokenizers.DefaultTokenizer(stem)
        for text in texts + texts:  # the second time from memory
            assert ours.tokenize(text) == theirs.tokenize(text), (stem, text)


def test_scoring_the_same_references_again_stems_nothing_again():
    """What makes a course's repeated scoring cheap: texts and stems are remembered for the whole process."""
    predictions, references = [p for p, _ in EXAMPLES], [r for _, r in EXAMPLES]
    first = evaluation.rouge_per_example(predictions, references)
    tokenizer = _metric_module()._tokenizer(True)
    assert tokenizer._tokens.cache_info().currsize > 0, "the metric scores with this process's one tokenizer"
    stems, texts = tokenizer.stem.cache_info().misses, tokenizer._tokens.cache_info().misses
    again = evaluation.rouge_per_example(predictions, references)
    assert tokenizer.stem.cache_info().misses == stems and tokenizer._tokens.cache_info().misses == texts
    assert all(np.array_equal(first[t], again[t]) for t in TYPES)
