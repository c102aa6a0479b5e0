from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from haystack import Document

from ragship.errors import SpecError
from ragship.pipelines.validate import validate_spec
from ragship.spec import PipelineSpec, default_spec, load_spec
from ragship.stores import EmbeddedDocumentStore


@pytest.mark.parametrize("generator", ["extractive", "openai"])
def test_load_dump_load_round_trips_exactly(tmp_path: Path, generator: str) -> None:
    path = default_spec(generator=generator).save(tmp_path / "spec.yaml")
    first = load_spec(path)
    text = first.to_yaml()
    assert text == path.read_text()
    assert PipelineSpec.from_yaml(text) == first
    assert first.hash == default_spec(generator=generator).hash


def test_default_spec_validates_and_keeps_device_unpinned() -> None:
    spec = default_spec()
    assert validate_spec(spec) == []
    assert spec.indexing["components"]["embedder"]["init_parameters"]["device"] is None
    assert spec.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"


def test_openai_key_is_an_env_reference_not_a_value() -> None:
    spec = default_spec(generator="openai", openai_api_key_env="MY_KEY")
    key = spec.query["components"]["llm"]["init_parameters"]["api_key"]
    assert key == {"type": "env_var", "env_vars": ["MY_KEY"], "strict": True}


def _edit(tmp_path: Path, change) -> Path:
    data = default_spec().to_dict()
    change(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_unknown_component_type_names_the_key(tmp_path: Path) -> None:
    def change(d):
        d["query"]["components"]["joiner"]["type"] = "nowhere.Joiner"

    problems = validate_spec(load_spec(_edit(tmp_path, change)))
    assert len(problems) == 1
    assert problems[0].startswith("query.components.joiner.type: cannot load component type 'nowhere.Joiner'")


def test_missing_connection_names_the_socket(tmp_path: Path) -> None:
    def change(d):
        d["query"]["connections"] = [c for c in d["query"]["connections"] if c["receiver"] != "answer_builder.replies"]

    problems = validate_spec(load_spec(_edit(tmp_path, change)))
    assert problems == [
        "query.components.answer_builder: mandatory input 'replies' has no connection; "
        "add one to query.connections with receiver 'answer_builder.replies'."
    ]


def test_connection_to_unknown_component(tmp_path: Path) -> None:
    def change(d):
        d["indexing"]["connections"].append({"sender": "ghost.documents", "receiver": "writer.documents"})

    problems = validate_spec(load_spec(_edit(tmp_path, change)))
    assert problems[0].startswith("indexing.connections[4].sender: 'ghost.documents' names no component")


def test_dimension_mismatch_with_store(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(tmp_path / "store")
    store.write_documents([Document(content="x", meta={}, embedding=np.ones(8).tolist())])
    problems = validate_spec(default_spec(), store)
    assert len(problems) == 1
    assert problems[0].startswith("indexing.components.embedder.init_parameters.model:")
    assert "384-dimensional" in problems[0] and "holds 8" in problems[0]


def test_embedders_that_disagree(tmp_path: Path) -> None:
    def change(d):
        d["query"]["components"]["query_embedder"]["init_parameters"]["model"] = "other/model"

    problems = validate_spec(load_spec(_edit(tmp_path, change)))
    assert any("embedders disagree" in p and "query.components.query_embedder" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("indexing: [unclosed", "not valid YAML at line 1"),
        ("- a list", "top level must be a mapping"),
        ("indexing: {components: {a: {type: x}}}\n", "'query' is missing"),
        ("extra: 1\nindexing: {}\nquery: {}\n", "unknown top-level key(s) ['extra']"),
        ("ragship_spec: 9\nindexing: {}\nquery: {}\n", "ragship_spec 9 is not supported"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_spec_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="ragship spec init"):
        load_spec(tmp_path / "nope.yaml")


def test_bad_retrieval_mode_in_metadata(tmp_path: Path) -> None:
    def change(d):
        d["query"]["metadata"]["retrieval_mode"] = "fuzzy"

    assert any("retrieval_mode: 'fuzzy'" in p for p in validate_spec(load_spec(_edit(tmp_path, change))))


def test_the_built_in_spec_takes_mode_and_top_k_from_the_settings(tmp_path: Path) -> None:
    from ragship.assembly import resolve_spec
    from ragship.settings import load_settings

    shaped = resolve_spec(None, load_settings(home=tmp_path, mode="bm25", top_k=3))
    assert shaped.retrieval_mode == "bm25"
    assert shaped.query["components"]["joiner"]["init_parameters"]["top_k"] == 3
    assert resolve_spec(None, load_settings(home=tmp_path)).hash == default_spec().hash  # defaults unchanged
    own = default_spec(mode="dense", top_k=7).save(tmp_path / "own.yaml")
    kept = resolve_spec(own, load_settings(home=tmp_path, mode="bm25", top_k=3))
    assert kept.retrieval_mode == "dense"  # a spec file keeps its own values


def test_every_retrieval_mode_has_one_row_in_the_branch_table_and_bad_modes_name_the_choices() -> None:
    from ragship.enums import RetrievalMode
    from ragship.pipelines import BRANCHES_OF_MODE

    assert set(BRANCHES_OF_MODE) == set(RetrievalMode)
    with pytest.raises(SpecError, match=r"retrieval mode: 'sideways' is not one of \['bm25', 'dense', 'hybrid'\]"):
        default_spec(mode="sideways")


def test_the_indexing_hash_follows_the_indexing_pipeline_only() -> None:
    base = default_spec()
    assert default_spec(top_k=9).indexing_hash == base.indexing_hash  # a query change keeps chunks valid
    assert default_spec(split_length=99).indexing_hash != base.indexing_hash


def test_the_built_in_spec_keeps_its_hash() -> None:
    """The template and the knob table rebuild exactly what the component-built spec was: stores keep their chunks
    (the indexing hash), and the query pipeline changes only on purpose (cc86339af5587e34 before history_weight)."""
    from ragship.settings import load_settings
    from ragship.spec import spec_from_settings

    assert default_spec().indexing_hash == "98b4f22c2697b41f"
    assert default_spec().hash == "500a51221b357b68"
    assert spec_from_settings(load_settings()).hash == "500a51221b357b68"


@pytest.mark.parametrize("variant", [{}, {"generator": "openai", "ranker_model": "x/y", "split_by": "word"}])
def test_haystack_serializes_the_template_back_the_same(variant: dict) -> None:
    """A library upgrade that renames or adds an init parameter shows up here, not as a silent hash change."""
    from ragship.pipelines import load_pipeline

    spec = default_spec(**variant)
    for where in ("indexing", "query"):
        section = getattr(spec, where)
        assert load_pipeline(section, where).to_dict()["components"] == section["components"]


def test_every_tunable_knob_lands_where_its_targets_say() -> None:
    """default_spec(knob=v) and with_overrides(default_spec(), knob=v) agree, with and without a ranker, for an
    LLM and the extractive answerer; each knob changes at least one of them."""
    from ragship.spec import KNOBS, with_overrides

    other = {int: 3, float: 0.25, list: [0.6, 0.4], str: "other/model"}
    for name, knob in KNOBS.items():
        if not knob.targets or name in ("ranker_model", "embedding_backend", "fusion", "local_model"):
            continue
        value = {"split_overlap": 7, "split_length": 99, "answer_sentences": 2}.get(name, other[knob.kind])
        changed = set()
        for ranker in (None, "x/ranker"):
            for generator in ("openai", "extractive"):
                base = {"generator": generator, "ranker_model": ranker}
                if generator == "extractive" and knob.setting and knob.setting.startswith("openai"):
                    continue
                built = default_spec(**base, **{name: value})
                tuned = with_overrides(default_spec(**base), **{name: value})
                assert (built.indexing, built.query) == (tuned.indexing, tuned.query), name
                if built.hash != default_spec(**base).hash:
                    changed.add(generator)
        assert changed, name


def test_a_bad_knob_value_names_the_knob_and_the_bound(tmp_path: Path) -> None:
    from ragship.eval.datasets import DatasetError
    from ragship.eval.tracked import load_grid

    with pytest.raises(SpecError, match=r"feedback_terms: 0 is below the minimum 1"):
        default_spec(feedback_terms=0)
    with pytest.raises(SpecError, match=r"original_query_weight: 1.5 is above the maximum 1"):
        default_spec(original_query_weight=1.5)
    with pytest.raises(SpecError, match=r"fusion: 'sum' is not one of \['reciprocal_rank_fusion'"):
        default_spec(fusion="sum")
    with pytest.raises(SpecError, match=r"unknown knob\(s\) \['top_n'\]"):
        default_spec(top_n=3)
    with pytest.raises(DatasetError, match=r"grid.rrf_k: 0 is below the minimum 1"):
        load_grid({"dataset": str(tmp_path), "grid": {"rrf_k": [60, 0]}})
    with pytest.raises(DatasetError, match=r"grid key\(s\) \['embedding_model'\] unknown"):
        load_grid({"dataset": str(tmp_path), "grid": {"embedding_model": ["x"]}})


def test_components_are_found_by_class_so_a_subclass_or_a_base_plays_the_role() -> None:
    from ragship.spec import Role

    spec = default_spec()
    spec.query["components"]["joiner"]["type"] = "haystack.components.joiners.document_joiner.DocumentJoiner"
    assert list(spec.components_of("query", Role.JOINER)) == ["joiner"]
    assert list(spec.components_of("query", Role.RANKER)) == []
    spec.query["components"]["joiner"]["type"] = "nowhere.FusionJoiner"  # a matching name is not enough
    assert spec.components_of("query", Role.JOINER) == {}


def test_spec_init_offers_every_cli_knob_with_its_default() -> None:
    from typer.testing import CliRunner

    from ragship.cli import app
    from ragship.spec import KNOBS

    result = CliRunner().invoke(app, ["spec", "init", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flags = {f"--{name.replace('_', '-')}" for name, knob in KNOBS.items() if knob.cli}
    assert all(flag in result.output for flag in flags)
    assert "[default: (20)]" in result.output and "the top_k setting, 5" in result.output
