"""What MLflow gets from a spec and an evaluation, without a tracking store: the prompt, the version's
description, the answer scorers and the figures."""

from __future__ import annotations

from ragship.eval.datasets import QAExample
from ragship.settings import load_settings
from ragship.spec import DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT, default_spec


def test_an_llm_spec_has_its_chat_template_as_the_prompt() -> None:
    from ragship.tracking.prompts import prompt_name, prompt_template

    spec = default_spec(generator="openai")
    assert prompt_template(spec) == [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": DEFAULT_USER_PROMPT},
    ]
    assert prompt_name(spec, load_settings(mlflow={"registered_model": "my model"})) == "my-model-default-openai"


def test_an_extractive_spec_has_no_prompt() -> None:
    from ragship.tracking.prompts import prompt_template

    assert prompt_template(default_spec()) is None


def test_a_version_description_states_spec_data_metrics_and_run() -> None:
    from ragship.tracking.versions import describe

    settings = load_settings()
    facts = {
        "spec_name": "default-extractive",
        "spec_hash": "abc123",
        "retrieval_mode": "hybrid",
        "dataset": "nfcorpus",
        "dataset_fingerprint": "f00d",
        "ndcg_at_10": "0.3210",
        "run_id": "r1",
    }
    text = describe(facts, settings)
    for fact in ("default-extractive", "abc123", "nfcorpus", "f00d", "ndcg_at_10 0.3210", "r1"):
        assert fact in text
    assert "not evaluated" in text  # no answer metrics yet: the description says how to get them
    answered = describe(
        facts | {"answers.run_id": "qa1", "answers.qa_set": "g.jsonl", "answers.token_f1": "0.7"}, settings
    )
    assert "token_f1 0.7" in answered and "qa1" in answered and "not evaluated" not in answered


def test_answer_scorers_give_ragships_answer_metrics() -> None:
    from ragship.eval.answers import source_scores, text_scores
    from ragship.eval.genai import answer_scorers, assessment_table

    example = QAExample("How do I run the tests?", ["make test", "run make test"], ["docs/testing.md"])
    row = {"answer": "Run make test [1].", "sources": ["docs/testing.md", "a.md"], "cited": ["a.md"], "sas": 0.8}
    [item] = assessment_table([example], [row])
    assert item["inputs"] == {"question": example.question} and item["outputs"]["sas"] == 0.8
    scores = {s.name: s(outputs=item["outputs"], expectations=item["expectations"]) for s in answer_scorers()}
    expected = text_scores(row["answer"], example.answers) | source_scores(
        row["sources"], row["cited"], {"docs/testing.md"}
    )
    assert scores == expected | {"exact_match": 0.0}
    assert expected["contains_answer"] == 1.0 and expected["cited_source_precision"] == 0.0


def test_figures_stay_out_of_pyplot() -> None:
    import matplotlib.pyplot as plt

    from ragship.eval import plots

    before = plt.get_fignums()
    fig = plots.metrics_bar({"ndcg_at_10": 0.5}, "t")
    plots.grid_comparison([{"config": "a", "m": 0.1}], ["m"])
    # A pyplot figure would also be drawn by Jupyter's inline backend at the end of the cell.
    assert plt.get_fignums() == before and fig.axes[0].get_title() == "t"
