"""ONNX Runtime inference for the embedders: export a local sentence-transformers model, cache it, load it.

sentence-transformers' own ONNX path needs optimum, whose ONNX exporter pins an older transformers than
the lock's; the steps are simple enough to do here with torch.onnx, onnxruntime's transformer optimizer,
onnxruntime.quantization and onnxruntime. Only the transformer runs in ONNX Runtime: sentence-transformers
still tokenizes, pools and normalizes, so the ``onnx`` backend computes what ``torch`` does (to float
rounding) and ``onnx-int8`` the same with int8 weights.

The export traces the model with eager attention, then ONNX Runtime's transformer optimizer fuses each
layer's attention, bias + GELU and residual + layer norm into single operators, and the int8 model
quantizes the fused attention's projections as well as the plain matrix products. On the 2-core CPU that
is what takes int8 past 2x torch's throughput on 200-word chunks (benchmarks/README.md): unfused, the
softmax, masking and layer norms around the int8 products stayed float32 graph nodes and held it to
~1.7x. A model whose graph the optimizer does not recognise keeps the plain export.

The cache lives under the ``onnx_cache`` setting, one folder per model fingerprint (a hash of the model's
config and weight files, the exporter's format version and the torch/onnxruntime versions), so another
model or version exports afresh. Exports are written to a temporary file and renamed into place under a
file lock: workers starting together export once, and a crash never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from ragship.enums import EmbeddingBackend
from ragship.errors import ModelError
from ragship.settings import get_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: Bumped when the export steps change, so caches written by an older ragship are not reused.
EXPORT_FORMAT = 2
_FP32_FILE = "model.onnx"
#: Files of a model directory whose content decides what the export computes.
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")


def cpu_int8_profile() -> str:
    """The int8 kernels this CPU runs fastest: ``avx512_vnni``, ``avx2``, ``arm64`` or ``generic``.

    Read from ``/proc/cpuinfo`` flags (Linux) or the machine type.
    """
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "generic"
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "avx512_vnni"
    if "avx2" in flags:
        return "avx2"
    return "generic"


def model_fingerprint(model_dir: Path) -> str:
    """A short hash of what the export depends on: the model's files and the exporter's versions."""
    import onnxruntime
    import torch

    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{torch.__version__}|{onnxruntime.__version__}".encode())
    files = sorted(
        p for p in model_dir.rglob("*") if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES and "onnx" not in p.parts
    )
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode())
        with path.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def onnx_model_path(model_dir: str | Path, backend: EmbeddingBackend, cache_dir: Path | None = None) -> Path:
    """Path of the ONNX file for ``backend``, exporting (and quantizing) it into the cache if missing.

    :param model_dir: a local sentence-transformers model directory (a resolved model reference).
    :param backend: ``onnx`` or ``onnx-int8``.
    :param cache_dir: the cache root; the ``onnx_cache`` setting when None.
    :returns: the cached ``.onnx`` file.
    :raises ModelError: if the model is not a local directory or the export fails.
    """
    source = Path(model_dir)
    if not source.is_dir():
        raise ModelError(
            f"backend {backend.value!r} exports the model on this machine, so it needs a local model directory;"
            f" {model_dir!r} is not one (download the model to a directory and put its path in the spec's 'model')."
        )
    root = Path(cache_dir) if cache_dir is not None else get_settings().onnx_cache
    folder = root.expanduser() / model_fingerprint(source)
    fp32 = folder / _FP32_FILE
    target = fp32 if backend is EmbeddingBackend.ONNX else folder / f"model_qint8_{cpu_int8_profile()}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if not fp32.exists():
            _atomic_write(fp32, lambda tmp: _export_fp32(source, tmp))
        if not target.exists():
            _atomic_write(target, lambda tmp: _quantize(fp32, tmp))
    return target


def _atomic_write(target: Path, write: Any) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    started = time.perf_counter()
    logger.info("Writing ONNX model %s (once per model and machine kind)", target)
    try:
        write(tmp)
        os.replace(tmp, target)
    except Exception as e:
        raise ModelError(f"Could not write the ONNX model {target}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("Wrote ONNX model %s in %.1f s", target, time.perf_counter() - started)


def _export_fp32(model_dir: Path, out: Path) -> None:
    """The model traced to ONNX (float32), with the transformer blocks fused where the optimizer can."""
    traced = out.with_name(out.name + ".traced")
    try:
        config = _trace(model_dir, traced)
        _fuse(traced, out, config)
    finally:
        traced.unlink(missing_ok=True)


def _trace(model_dir: Path, out: Path) -> Any:
    """Trace the model's transformer to ``out``; returns the model config (for the fusion step)."""
    import torch
    from sentence_transformers import SentenceTransformer

    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime fuses; SDPA traces to one it does not.
    st = SentenceTransformer(
        str(model_dir),
        device="cpu",
        local_files_only=True,
        backend="torch",
        model_kwargs={"attn_implementation": "eager"},
    )
    transformer: Any = st[0]
    model = transformer.model.eval()
    tokenizer = transformer.tokenizer
    sample = tokenizer(["an example sentence to trace", "another"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True)), return_dict=True).last_hidden_state

    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter warns that it is deprecated; the dynamo one needs onnxscript.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(),
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    return model.config


def _fuse(traced: Path, out: Path, config: Any) -> None:
    """Write ``traced`` with fused attention/GELU/layer-norm operators to ``out``, or as it is if none fuse."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads = getattr(config, "num_attention_heads", 0) or 0
    hidden = getattr(config, "hidden_size", 0) or 0
    try:
        # opt_level 0: only the portable Python fusions; ORT's own hardware-specific passes run at load time.
        optimized = optimize_model(str(traced), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
        fused = {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}
    except Exception as e:  # an architecture the optimizer cannot read still runs unfused
        logger.warning("ONNX Runtime's optimizer could not fuse %s (%s); keeping the plain export", traced, e)
        os.replace(traced, out)
        return
    logger.info("Fused operators in the ONNX export: %s", fused or "none")
    optimized.save_model_to_file(str(out))


def _quantize(fp32: Path, out: Path) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    profile = cpu_int8_profile()
    # ONNX Runtime advises running its pre-processing (shape inference, then optimization) first. The model
    # was already optimized by the transformer optimizer (_fuse), and shape inference cannot type its fused
    # com.microsoft operators, so the advice does not apply: it is dropped rather than shown to every first user.
    root = logging.getLogger()
    root.addFilter(_without_preprocessing_advice)
    try:
        # Without VNNI, u8 x s8 products can saturate in 16 bits: 7-bit weights (reduce_range) avoid it.
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=profile in ("avx2", "generic"),
            op_types_to_quantize=["MatMul", "Attention"],
            # The fused operators (com.microsoft) have no ONNX shape inference: their outputs are float32.
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(_without_preprocessing_advice)


def _without_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()


def _onnx_transformer(path: Path, config: Any, row_by_row: bool) -> Any:
    """A torch module that stands in for the Hugging Face model inside sentence-transformers' Transformer.

    ``row_by_row`` runs each text of a batch alone, cut to its own length. Dynamic int8 quantization scales
    the activations of the whole input tensor, so a text's embedding would depend on the texts (and the
    padding) batched with it: cosine 0.989 to itself alone on NFCorpus queries. Alone, a question gets the
    same vector whatever else the API is encoding, and a chunk the same vector whatever its batch; on this
    CPU a 200-word chunk costs the same either way (benchmarks/README.md).
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    class OnnxTransformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            threads = torch.get_num_threads()
            options.intra_op_num_threads = threads
            # Idle threads sleep instead of spinning: spinning ORT threads starve torch and the other
            # processes (API, store, neighbours) that share the few cores of a CPU host.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self.session.get_inputs()]
            self.config = config

        def forward(self, **features: Any) -> dict[str, Any]:
            feeds = {name: features[name].cpu().numpy() for name in self.input_names if name in features}
            if "token_type_ids" in self.input_names and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = torch.zeros_like(features["input_ids"]).numpy()
            if not row_by_row or len(feeds["input_ids"]) == 1:
                (hidden,) = self.session.run(["last_hidden_state"], feeds)
                return {"last_hidden_state": torch.from_numpy(hidden)}
            mask = features["attention_mask"].cpu().numpy().astype(bool)
            batch, length = mask.shape
            out = np.zeros((batch, length, config.hidden_size), dtype=np.float32)
            for row in range(batch):
                # Padding sits anywhere the mask is 0 (either side): keep exactly the row's own tokens.
                keep = mask[row]
                (hidden,) = self.session.run(
                    ["last_hidden_state"], {n: v[row : row + 1, keep] for n, v in feeds.items()}
                )
                out[row, keep] = hidden[0]
            return {"last_hidden_state": torch.from_numpy(out)}

    return OnnxTransformer()


def use_onnx(st: SentenceTransformer, path: Path, backend: EmbeddingBackend) -> None:
    """Run ``st``'s transformer through ONNX Runtime from ``path``; tokenizer, pooling, normalizing stay."""
    transformer: Any = st[0]
    onnx_model = _onnx_transformer(path, transformer.model.config, row_by_row=backend is EmbeddingBackend.ONNX_INT8)
    # sentence-transformers filters the features by the forward's parameters; the ONNX model takes **kwargs.
    transformer.model_forward_params = None
    transformer._declared_forward_params = set()
    transformer.model = onnx_model
