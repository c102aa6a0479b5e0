from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragship.eval.datasets import DatasetError, load_beir, load_qa
from ragship.eval.metrics import evaluate_run


def test_metrics_match_a_hand_computed_case() -> None:
    # q1: ranking b (grade 1), a (grade 2), z (unjudged). trec_eval's nDCG uses linear gain:
    #   DCG = 1/log2(2) + 2/log2(3) = 2.2619; ideal = 2/log2(2) + 1/log2(3) = 2.6309; nDCG = 0.85972
    # q2: only relevant doc x at rank 2: nDCG = 1/log2(3) = 0.63093, RR = 0.5, AP = 0.5
    qrels = {"q1": {"a": 2, "b": 1, "c": 0}, "q2": {"x": 1}}
    run = {"q1": {"b": 3.0, "a": 2.0, "z": 1.0}, "q2": {"y": 2.0, "x": 1.0}}
    means, per_query = evaluate_run(qrels, run)
    assert per_query["q1"]["ndcg_at_10"] == pytest.approx(2.26186 / 2.63093, abs=1e-4)
    assert per_query["q2"]["ndcg_at_10"] == pytest.approx(0.63093, abs=1e-4)
    assert per_query["q1"]["mrr_at_10"] == 1.0 and per_query["q2"]["mrr_at_10"] == 0.5
    assert per_query["q1"]["map_at_100"] == 1.0 and per_query["q2"]["map_at_100"] == 0.5
    assert means["ndcg_at_10"] == pytest.approx((0.85972 + 0.63093) / 2, abs=1e-4)
    assert means["recall_at_10"] == 1.0


def test_mrr_at_10_ignores_hits_below_rank_10_and_missing_queries_count_zero() -> None:
    qrels = {"q": {"hit": 1}, "absent": {"d": 1}}
    run = {"q": {f"miss{i}": 100.0 - i for i in range(10)} | {"hit": 1.0}}
    means, per_query = evaluate_run(qrels, run)
    assert per_query["q"]["mrr_at_10"] == 0.0
    assert per_query["q"]["recall_at_100"] == 1.0
    assert per_query["absent"]["ndcg_at_10"] == 0.0
    assert means["recall_at_100"] == 0.5


def _beir(tmp_path: Path, corpus: list[str], queries: list[str], qrels: str) -> Path:
    (tmp_path / "qrels").mkdir(parents=True)
    (tmp_path / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    return tmp_path


GOOD_CORPUS = [
    json.dumps({"_id": "d1", "title": "T", "text": "x"}),
    json.dumps({"_id": "d2", "title": "", "text": "y"}),
]
GOOD_QUERIES = [json.dumps({"_id": "q1", "text": "question one"})]


def test_valid_dataset_loads_with_fingerprint(tmp_path: Path) -> None:
    data = load_beir(_beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t2\n"))
    assert data.queries == {"q1": "question one"}
    assert data.qrels == {"q1": {"d1": 2}}
    assert len(data.fingerprint) == 16
    assert data.limited(1) is data


def test_every_split_of_a_corpus_shares_one_evaluation_index(tmp_path: Path) -> None:
    from ragship.eval.retrieval import index_fingerprint
    from ragship.spec import default_spec

    path = _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, "q1\td1\t2\n")
    (path / "qrels" / "dev.tsv").write_text("q1\td2\t1\n")
    test, dev = load_beir(path, split="test"), load_beir(path, split="dev")
    assert test.fingerprint != dev.fingerprint  # runs on each split are told apart
    spec = default_spec()
    assert index_fingerprint(spec, test) == index_fingerprint(spec, dev) == index_fingerprint(spec, dev.limited(0))
    (path / "corpus.jsonl").write_text("\n".join(GOOD_CORPUS[:1]) + "\n")
    (path / "qrels" / "dev.tsv").write_text("q1\td1\t1\n")
    assert index_fingerprint(spec, load_beir(path, split="dev")) != index_fingerprint(spec, dev)  # new corpus
    assert index_fingerprint(default_spec(split_length=99), dev) != index_fingerprint(spec, dev)


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "message"),
    [
        (["{bad json"], GOOD_QUERIES, "q1\td1\t1\n", "corpus.jsonl:1: invalid JSON"),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\tmissing\t1\n", "qrels/test.tsv:1: document id 'missing'"),
        (GOOD_CORPUS, GOOD_QUERIES, "query-id\tcorpus-id\tscore\nq9\td1\t1\n", "qrels/test.tsv:2: query id 'q9'"),
        (
            GOOD_CORPUS,
            [json.dumps({"_id": "q1", "text": " "})],
            "q1\td1\t1\n",
            "queries.jsonl:1: query q1 has empty text",
        ),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\td1\n", "qrels/test.tsv:1: expected 3 tab-separated fields"),
        (GOOD_CORPUS, GOOD_QUERIES, "q1\td1\thigh\n", "relevance 'high' is not an integer"),
    ],
)
def test_malformed_datasets_name_file_and_line(
    tmp_path: Path, corpus: list[str], queries: list[str], qrels: str, message: str
) -> None:
    with pytest.raises(DatasetError) as err:
        load_beir(_beir(tmp_path, corpus, queries, qrels))
    assert message in str(err.value)


def test_missing_split_lists_available_ones(tmp_path: Path) -> None:
    path = _beir(tmp_path, GOOD_CORPUS, GOOD_QUERIES, "q1\td1\t1\n")
    with pytest.raises(DatasetError, match=r"splits available: \['test'\]"):
        load_beir(path, split="dev")


def test_qa_loader_checks_each_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "q?", "answers": ["a"], "sources": ["docs/x.md"]}) + "\n")
    assert load_qa(path)[0].answers == ["a"]
    path.write_text(json.dumps({"question": "q?", "answers": []}) + "\n")
    with pytest.raises(DatasetError, match=r"qa.jsonl:1: 'answers' must be a non-empty list"):
        load_qa(path)
