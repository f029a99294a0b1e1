"""ONNX export of a fitted model's scoring network and its onnxruntime serving cost (results.json
``efficiency.onnx``, with ``compress.export_onnx=true``).

The exported graph is the model's serving module (``Recommender.serving_module``; the compressed copy under a
``compress`` method) as a function of its scoring inputs: ``score_inputs(users)`` gives them (BPR, LightGCN:
the user codes; SASRec: the users' token rows) and ``score_from(...)`` computes the (users x items) scores in
torch, traced by ``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic user axis). The latency and
throughput are measured exactly as for torch (recux.efficiency): the same seeded users, one at a time through
score -> mask -> top-k, and the batched ranking of every test user, with onnxruntime's CPU provider on as many
intra-op threads as torch uses. ``max_abs_diff_vs_torch`` compares the two scorers on the timed users.
Where a model cannot be exported the record holds ``error`` (why) instead; onnx and onnxruntime are the
optional extra ``recux[deploy]``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

OPSET = 17


def export(module: Any, example_users: np.ndarray, path: str | Path) -> list[str]:
    """Write ``module``'s scoring function to an ONNX file; returns its input names."""
    import torch
    from torch import nn

    inputs = module.score_inputs(example_users)
    names = list(inputs)

    class Scores(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner.score_from(*args)

    dynamic = {n: {0: "users"} for n in [*names, "scores"]}
    with torch.no_grad():
        torch.onnx.export(Scores().eval(), tuple(torch.from_numpy(v) for v in inputs.values()), str(path),
                          input_names=names, output_names=["scores"], dynamic_axes=dynamic, opset_version=OPSET,
                          dynamo=False)
    return names


class OnnxScorer:
    """score(users) through an onnxruntime session of an exported serving module."""

    def __init__(self, module: Any, path: str | Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        self.module = module
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.session.run(["scores"], self.module.score_inputs(users))[0]


def exportable(model: Any) -> tuple[Any, str | None]:
    """(serving module, None), or (None, why it cannot be exported)."""
    module = model.serving_module() if callable(getattr(model, "serving_module", None)) else None
    if module is None:
        return None, f"{type(model).__name__} scores without a torch network (no serving module to export)"
    if not (callable(getattr(module, "score_inputs", None)) and callable(getattr(module, "score_from", None))):
        return None, (f"{type(module).__name__} has no score_inputs/score_from (the torch scoring function an "
                      "export traces)")
    return module, None


def onnx_efficiency(model: Any, test_users: np.ndarray, exclude: sp.csr_matrix, k: int, batch_size: int,
                    latency_users: int = 100, warmup: int = 10, seed: int = 0) -> dict[str, Any]:
    """The ``efficiency.onnx`` record (see the module docstring)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return {"error": f"onnx/onnxruntime not installed ({exc.name}); pip install 'recux[deploy]'"}
    import torch

    from recux.efficiency import batch_throughput, latency_sample, single_user_latency
    from recux.ranking import to_numpy

    module, why = exportable(model)
    if module is None:
        return {"error": why}
    if any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in module.modules()):
        return {"error": "the scoring network holds dynamically quantised nn.Linear layers (compress=int8), which "
                         "torch's ONNX exporter does not translate; export the compress=none or fp16 variant"}
    sample, warm = latency_sample(test_users, latency_users, warmup, seed)
    with tempfile.TemporaryDirectory(prefix="recux-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            t0 = time.perf_counter()
            export(module, sample[:2], path)
            export_seconds = time.perf_counter() - t0
            scorer = OnnxScorer(module, path, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - recorded: the run's torch results stand without ONNX
            return {"error": f"export failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}"}
        diff = float(np.max(np.abs(scorer.score(sample) - to_numpy(model.score(sample))))) if len(sample) else None
        latency = single_user_latency(scorer.score, sample, k, exclude, warmup=warm)
        throughput = batch_throughput(scorer.score, np.asarray(test_users), k, exclude, batch_size)
        return {"size_bytes": path.stat().st_size, "latency_ms": latency, "latency_k": int(k),
                "throughput_users_per_s": throughput,
                "max_abs_diff_vs_torch": diff, "export_seconds": round(export_seconds, 3), "opset": OPSET,
                "runtime": f"onnxruntime {onnxruntime.__version__} CPU"}
