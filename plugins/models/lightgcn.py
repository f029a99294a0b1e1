"""LightGCN (He et al., SIGIR 2020): embeddings smoothed over the user-item graph by parameter-free
propagation, trained with the BPR loss by a pytorch_lightning Trainer with early stopping on validation NDCG.
The torch network lives in ``_lightgcn_net`` and is imported only when used."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recux.data import Interactions
from recux.errors import ConfigError
from recux.lightning_model import LightningRecommender
from recux.plugins.models._checks import check_rates
from recux.registry import register


def normalized_adjacency(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 of the bipartite graph A = [[0, R], [R^T, 0]] (users first, then items) with R the
    binary user x item matrix (repeated pairs count once); isolated nodes get all-zero rows. float32 CSR."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    n = n_users + n_items
    rows = np.concatenate([users, items + n_users])
    cols = np.concatenate([items + n_users, users])
    adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, n))
    adj.sum_duplicates()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros(n)
    np.power(deg, -0.5, out=inv_sqrt, where=deg > 0)
    coo = adj.tocoo()
    vals = inv_sqrt[coo.row] * inv_sqrt[coo.col]
    out = sp.csr_matrix((vals.astype(np.float32), (coo.row, coo.col)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


@register("model", "lightgcn", training="lightning", capabilities={"torch_module"})
class LightGCN(LightningRecommender):
    """LightGCN: BPR-trained ego embeddings; scores use their mean over 0..n_layers graph propagations."""

    FORMAT = "recux-lightgcn/1"

    def __init__(
        self,
        embedding_dim: int = 64,
        n_layers: int = 3,
        lr: float = 5e-3,
        reg: float = 1e-3,
        batch_size: int = 2048,
        max_epochs: int = 500,
        patience: int = 20,
        num_negatives: int = 4,
        eval_every: int = 1,
        exclude_positives: bool = True,
        init_std: float = 0.1,
        num_threads: int | None = None,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
    ) -> None:
        """Defaults were tuned on ML-100K validation NDCG@10 (per-user random 80/10/10, 3 split seeds).

        reg: L2 weight on the batch's ego embeddings (reg * sum of squares / (2 * batch size), as in the
        paper's code). num_threads: torch and numba threads while fitting (None: leave them).
        optimizer/scheduler: ``recux.optim`` specs, e.g. ``+model.optimizer={_target_: torch.optim.SGD,
        _partial_: true, momentum: 0.9}`` (lr, and weight_decay when nonzero, come from the model's settings
        unless given); null: Adam and a constant rate.
        """
        if (embedding_dim < 1 or n_layers < 0 or batch_size < 1 or max_epochs < 1 or num_negatives < 1
                or eval_every < 1):
            raise ConfigError(
                "lightgcn: embedding_dim, batch_size, max_epochs, num_negatives and eval_every must be >= 1 "
                f"and n_layers >= 0 (got n_layers={n_layers}); fix conf/model/lightgcn.yaml or the override"
            )
        check_rates("lightgcn", lr, optimizer, reg=reg)
        self.hparams: dict[str, Any] = dict(
            embedding_dim=int(embedding_dim), n_layers=int(n_layers), lr=float(lr), reg=float(reg),
            batch_size=int(batch_size), max_epochs=int(max_epochs), patience=int(patience),
            num_negatives=int(num_negatives), eval_every=int(eval_every),
            exclude_positives=bool(exclude_positives), init_std=float(init_std), num_threads=num_threads,
            optimizer=optimizer, scheduler=scheduler,
        )
        self._edges: tuple[np.ndarray, np.ndarray] | None = None  # training pairs: the graph

    def _build_net(self, finetune: Any = None) -> Any:
        from recux.plugins.models._lightgcn_net import LightGCNNet

        h = self.hparams
        users, items = self._edges
        adj = normalized_adjacency(users, items, self.n_users, self.n_items)
        return LightGCNNet(adj, self.n_users, self.n_items, h["embedding_dim"], h["n_layers"], h["reg"],
                           h["init_std"], self.optimizer_spec(), finetune, scheduler=self.scheduler_spec())

    def _remember(self, train: Interactions) -> None:
        self._edges = (np.asarray(train.user, dtype=np.int32), np.asarray(train.item, dtype=np.int32))

    def _batches(self, net: Any, train: Interactions, seed: int) -> Any:
        from recux.training import PairBatches

        h = self.hparams
        return PairBatches(train.user, train.item, self.n_items, batch_size=h["batch_size"],
                           num_negatives=h["num_negatives"], seed=seed, exclude_positives=h["exclude_positives"])

    def serving_module(self) -> Any:
        """The propagated final embeddings (what scoring reads), as a dot-product scorer without the graph."""
        from recux.compression import factor_scorer

        if self.net is None:
            return None
        if getattr(self, "_serving", None) is None or self._serving[0] is not self.net:
            self._serving = (self.net, factor_scorer(*self.net.final_embeddings()))
        return self._serving[1]

    def _extra_state(self) -> dict[str, Any]:
        """The training graph's edges: propagation needs them."""
        import torch

        users, items = self._edges
        return {"edge_user": torch.from_numpy(users), "edge_item": torch.from_numpy(items)}

    def _restore_data(self, blob: dict[str, Any]) -> None:
        self._edges = (blob["edge_user"].numpy(), blob["edge_item"].numpy())
