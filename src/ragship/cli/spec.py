"""``ragship spec``: create, show and validate pipeline specs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ragship.cli.common import StoreOption, err, out, print_error
from ragship.errors import RagshipError
from ragship.settings import (
    DEFAULT_EMBEDDING_BACKEND,
    DEFAULT_HISTORY_WEIGHT,
    FUSION_METHODS,
    EmbeddingBackend,
    GeneratorKind,
    RetrievalMode,
    SplitBy,
)

spec_app = typer.Typer(help="Create, show and validate pipeline specs.", no_args_is_help=True)


@spec_app.command("init")
def spec_init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")],
    generator: Annotated[GeneratorKind, typer.Option(help="How answers are written.")] = GeneratorKind.EXTRACTIVE,
    mode: Annotated[
        RetrievalMode | None, typer.Option(help="Retrieval mode (default: the mode setting, hybrid).")
    ] = None,
    embedding_model: Annotated[str | None, typer.Option(help="Sentence-transformers path or hub id.")] = None,
    embedding_backend: Annotated[
        EmbeddingBackend,
        typer.Option(
            help="onnx-int8 or onnx (float32): ONNX Runtime on the CPU, from a cached export; torch: uses a GPU."
        ),
    ] = DEFAULT_EMBEDDING_BACKEND,
    split_by: Annotated[
        SplitBy, typer.Option(help="section: along headings and blocks; or a unit count that ignores structure.")
    ] = SplitBy.SECTION,
    split_length: Annotated[int, typer.Option(min=1, help="Units per chunk (words for section).")] = 200,
    split_overlap: Annotated[int, typer.Option(min=0, help="Units shared by neighbouring chunks.")] = 40,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Sources per answer (default: the top_k setting, 5).")
    ] = None,
    openai_model: Annotated[str | None, typer.Option(help="Model name at the endpoint.")] = None,
    openai_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    local_model: Annotated[
        str | None,
        typer.Option(
            help="For --generator local: 'smollm2' (the bundled SmolLM2-135M-Instruct), a .gguf file, "
            "or a Hugging Face causal LM directory or hub id."
        ),
    ] = None,
    candidates: Annotated[int | None, typer.Option(min=1, help="Chunks each retriever branch returns (20).")] = None,
    fusion: Annotated[
        str | None,
        typer.Option(help="reciprocal_rank_fusion (default), distribution_based_rank_fusion or merge (weighted)."),
    ] = None,
    fusion_weights: Annotated[
        str | None, typer.Option(help="Branch weights, bm25 first, comma-separated (e.g. 0.6,0.4).")
    ] = None,
    rrf_k: Annotated[int | None, typer.Option(min=1, help="Reciprocal rank fusion's k (60).")] = None,
    ranker_model: Annotated[
        str | None, typer.Option(help="Cross-encoder (path or hub id) that reranks the fused candidates.")
    ] = None,
    feedback_docs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Pseudo-relevance feedback (RM3): the bm25 branch searches again with the words of its first "
            "N hits added (0, off).",
        ),
    ] = None,
    feedback_terms: Annotated[int | None, typer.Option(min=1, help="Words the feedback adds (20).")] = None,
    original_query_weight: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="The question's share of the feedback search (0.5).")
    ] = None,
    history_weight: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Weight of each earlier question a follow-up leans on, against the question's 1 "
            f"({DEFAULT_HISTORY_WEIGHT}; 0 ignores the history).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the default spec (both pipelines) to PATH."""
    from ragship.settings import get_settings
    from ragship.spec import spec_from_settings

    if path.exists() and not force:
        raise RagshipError(f"{path} exists; pass --force to overwrite it.")
    if split_overlap >= split_length:
        raise typer.BadParameter("must be smaller than --split-length", param_hint="--split-overlap")
    try:
        weights = [float(w) for w in fusion_weights.split(",")] if fusion_weights else None
    except ValueError:
        raise typer.BadParameter(
            "give numbers separated by commas, e.g. 0.7,0.3", param_hint="--fusion-weights"
        ) from None
    if fusion and fusion not in FUSION_METHODS:
        raise typer.BadParameter(f"one of {', '.join(FUSION_METHODS)}", param_hint="--fusion")
    spec = spec_from_settings(
        get_settings(),
        generator=generator.value,
        mode=mode,
        embedding_model=embedding_model,
        embedding_backend=embedding_backend,
        split_by=split_by,
        split_length=split_length,
        split_overlap=split_overlap,
        top_k=top_k,
        openai_model=openai_model,
        openai_base_url=openai_base_url,
        local_model=local_model,
        candidates=candidates,
        fusion=fusion,
        fusion_weights=weights,
        rrf_k=rrf_k,
        ranker_model=ranker_model,
        feedback_docs=feedback_docs,
        feedback_terms=feedback_terms,
        original_query_weight=original_query_weight,
        history_weight=history_weight,
    )
    spec.save(path)
    err.print(f"Wrote {spec.name} spec to {path} (hash {spec.hash}).")


@spec_app.command("show")
def spec_show(
    path: Annotated[Path | None, typer.Argument(help="Spec file (default: effective).")] = None,
) -> None:
    """Print a spec as YAML (the effective one when PATH is omitted)."""
    from ragship.runtime import resolve_spec

    sys.stdout.write(resolve_spec(path).to_yaml())


@spec_app.command("validate")
def spec_validate(
    path: Annotated[Path, typer.Argument(help="Spec file to check.")],
    store: StoreOption = None,
) -> None:
    """Check a spec: component types, connections, embedding dimension against the store."""
    from ragship.pipelines.validate import validate_spec
    from ragship.spec import load_spec
    from ragship.stores import open_store

    spec = load_spec(path)
    problems = validate_spec(spec, open_store(store) if store else None)
    if problems:
        for problem in problems:
            print_error(problem)
        raise typer.Exit(1)
    out.print(f"{path}: valid ({spec.name}, hash {spec.hash}, mode {spec.retrieval_mode}).")
