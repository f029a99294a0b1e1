"""Pareto optimality of points (variants) over several objectives, each maximised or minimised.

A point p dominates q when p is at least as good as q on every objective and strictly better on one; a point
is Pareto-optimal when no other point dominates it (equal points do not dominate each other, so duplicates of
an optimal point are all optimal). The sweep: sort the points best first lexicographically (every objective
turned into "higher is better"); a point can only be dominated by a point before it, and if any earlier point
dominates it then an earlier *optimal* point does (dominance is transitive), so each point is checked against
the optimal points found so far only (the "simple cull" of Kung, Luccio & Preparata 1975, J. ACM 22(4))."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_optimal(points: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the Pareto-optimal rows of ``points`` (n × d, finite); ``higher[j]``: whether a larger
    value of objective j is better."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != len(higher):
        raise ValueError(f"points must be n x {len(higher)} (one column per direction), got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite: drop the variants without a value first")
    signed = pts * np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    order = np.lexsort(signed.T[::-1])[::-1]  # best first on objective 0, ties broken by the next ones
    optimal = np.zeros(len(pts), dtype=bool)
    front: list[np.ndarray] = []
    for i in order:
        p = signed[i]
        if not any((q >= p).all() and (q > p).any() for q in front):
            optimal[i] = True
            front.append(p)
    return optimal
