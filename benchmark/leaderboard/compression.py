"""The leaderboard's "Compression" view: each compressed variant (results.json config ``compress`` other than
none; recux.compression) beside the uncompressed variant it was made from — the row of the same section whose
variant hash is the compressed one's without ``compress`` (same model, training and data) — with its accuracy
change on the section's primary metric and its size, latency and throughput relative to that row."""

from __future__ import annotations

import math
from typing import Any

from recux import identity
from recux.leaderboard.aggregate import Leaderboard, Row
from recux.leaderboard.collect import Run


def compress_name(run: Run) -> str:
    return str(((run.record.config or {}).get("compress") or {}).get("name") or "none")


def base_variant(run: Run) -> str:
    """The variant hash of the run's settings without compression."""
    return identity.variant_hash({**(run.record.config or {}), "compress": None})


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _eff(run: Run, key: str, onnx: bool = False) -> float | None:
    eff = run.record.extra.get("efficiency") or {}
    if onnx:
        eff = eff.get("onnx") or {}
    v = (eff.get("latency_ms") or {}).get(key[len("latency_"):]) if key.startswith("latency_") else eff.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _stat(row: Row, key: str, onnx: bool = False) -> float:
    return _mean([v for v in (_eff(r, key, onnx) for r in row.runs) if v is not None])


def paired_delta(row: Row, base: Row, metric: str) -> tuple[float, int]:
    """Mean over the seeds both rows ran of (compressed - uncompressed) ``metric``, and that seed count."""
    base_by_seed = {str(r.seed): r.metrics.get(metric) for r in base.runs}
    diffs = [r.metrics[metric] - base_by_seed[str(r.seed)] for r in row.runs
             if metric in r.metrics and base_by_seed.get(str(r.seed)) is not None]
    return _mean(diffs), len(diffs)


def _fmt(v: float, fmt: str) -> str:
    return "—" if v is None or math.isnan(v) else fmt.format(v)


def _ratio(v: float, ref: float) -> str:
    return "" if math.isnan(v) or math.isnan(ref) or ref == 0 else f" (×{v / ref:.2f})"


def compression_records(board: Leaderboard) -> list[dict[str, Any]]:
    """One record per compressed row whose uncompressed row is in the board (mean over seeds)."""
    rows = {r.variant_hash: r for r in board.rows}
    out = []
    for row in board.rows:
        if compress_name(row.runs[0]) == "none":
            continue
        base = rows.get(base_variant(row.runs[0]))
        if base is None:
            continue
        delta, n = paired_delta(row, base, board.primary)
        rec = {"variant": row.display, "base": base.display, "compress": compress_name(row.runs[0]),
               f"delta_{board.primary}": delta, "paired_seeds": n}
        for key in ("size_bytes", "latency_p50", "latency_p99", "throughput_users_per_s"):
            rec[key], rec[f"base_{key}"] = _stat(row, key), _stat(base, key)
        rec["onnx_latency_p50"] = _stat(row, "latency_p50", onnx=True)
        rec["base_onnx_latency_p50"] = _stat(base, "latency_p50", onnx=True)
        out.append(rec)
    return out


def render_compression(board: Leaderboard) -> list[str]:
    """The Markdown "Compression" view; none when the board has no compressed row with its base."""
    recs = compression_records(board)
    if not recs:
        return []
    m = board.primary
    lines = ["", "### Compression", "",
             f"Each compressed variant against the uncompressed one of the same model, training and data: Δ {m} is "
             "the mean over the seeds both ran of (compressed − uncompressed); size on disk, one user's top-k "
             "latency and batch throughput are means over seeds, with the ratio to the uncompressed row; ONNX "
             "p50 is the same latency through onnxruntime (compress.export_onnx), compressed / uncompressed.", "",
             f"| Variant | compared with | Δ {m} | seeds | size MB | latency p50 ms | latency p99 ms | users/s | "
             "ONNX p50 ms |", "|:---|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in recs:
        size = r["size_bytes"] / 2**20 if not math.isnan(r["size_bytes"]) else math.nan
        base_size = r["base_size_bytes"] / 2**20 if not math.isnan(r["base_size_bytes"]) else math.nan
        onnx = " / ".join(_fmt(r[k], "{:.3f}") for k in ("onnx_latency_p50", "base_onnx_latency_p50"))
        lines.append(
            f"| {r['variant']} | {r['base']} | {_fmt(r[f'delta_{m}'], '{:+.5f}')} | {r['paired_seeds']} | "
            f"{_fmt(size, '{:.3f}')}{_ratio(size, base_size)} | "
            f"{_fmt(r['latency_p50'], '{:.3f}')}{_ratio(r['latency_p50'], r['base_latency_p50'])} | "
            f"{_fmt(r['latency_p99'], '{:.3f}')}{_ratio(r['latency_p99'], r['base_latency_p99'])} | "
            f"{_fmt(r['throughput_users_per_s'], '{:,.0f}')}"
            f"{_ratio(r['throughput_users_per_s'], r['base_throughput_users_per_s'])} | {onnx} |")
    return lines
