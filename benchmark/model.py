"""The model contract: fit on a split's training data (validation available for early stopping), then
score every item for a batch of users. Lightning-trained and closed-form models both satisfy it."""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recux.data import Dataset, Interactions, Split

if TYPE_CHECKING:
    from recux.finetune import FineTuneStrategy


@dataclass
class FitContext:
    """Everything a model may use to fit. Test interactions are deliberately absent."""

    dataset: Dataset  # features, raw ids (its interactions are the *unsplit* log: do not train on them)
    split: Split  # use split.train; split.valid only for model selection / early stopping
    finetune: FineTuneStrategy
    seed: int = 0
    run_dir: Path | None = None  # where checkpoints may be written
    trainer: dict[str, Any] = field(default_factory=dict)  # pytorch_lightning.Trainer keyword arguments
    logger: Any = None  # a pytorch_lightning logger, or None
    # validate(score_fn) -> {"ndcg@10": ..., ...} on validation users, training items masked
    validate: Callable[[Callable[[np.ndarray], Any]], dict[str, float]] | None = None
    monitor: str = "ndcg@10"  # validation value that early stopping maximises
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch records a model appends to
    # weights to start from instead of a fresh initialisation (Lightning models): a state dict, or a file the
    # same model class saved; loaded before the fine-tuning strategy prepares the network
    init_from: str | Path | Mapping[str, Any] | None = None
    # Text, for models registered with capability "text_encoder" (the pipeline fills these only for them):
    encoder: Any = None  # a recux.encoder.TextEncoder (config group `encoder`)
    item_texts: list[str] | None = None  # one text per item code, from the item-text template
    # () -> (n_items, dim) float32 frozen embeddings of item_texts, cached on disk across runs
    item_embeddings: Callable[[], np.ndarray] | None = None


class Recommender(ABC):
    """Base class of model plugins. Subclasses take their hyper-parameters as constructor arguments."""

    n_users: int = 0
    n_items: int = 0

    @abstractmethod
    def fit(self, ctx: FitContext) -> None:
        """Learn from ``ctx.split.train``; may call ``ctx.validate`` for early stopping."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) float32 scores for user codes; higher means recommend first.

        May return a torch tensor (any device); the ranking code converts it."""

    def condition_on(self, history: Interactions) -> None:
        """Interactions the model may *condition on* (never train on) when scoring the test users.

        The runner calls it before test ranking with train + validation interactions, so a sequential model
        predicts the item after the validation item (leave-last-one-out). Default: ignore it (general models
        score from their training data, as in RecBole)."""
        return None

    # -- re-scoring an edited history (explanations' deletion test, recux.faithfulness)
    def history(self, users: np.ndarray) -> list[np.ndarray]:
        """The item codes each user is scored from (time order where the model reads order; repeats kept where
        the model counts them): ``score_histories(history(users))`` equals ``score(users)``."""
        raise NotImplementedError(f"{type(self).__name__} does not expose the history it scores users from, so "
                                  "it cannot be explained by deleting history items; pick a model an explainer "
                                  "supports (`recux-plugins explainer`)")

    def score_histories(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(len(histories), n_items) float32 scores of users whose history is the given item codes (in the
        layout of ``history``), with the fitted parameters unchanged: the model conditioned on an edited
        history, as if those had been the user's interactions."""
        raise NotImplementedError(f"{type(self).__name__} cannot score an edited history; pick a model an "
                                  "explainer supports (`recux-plugins explainer`)")

    def serving_module(self) -> Any:
        """The torch module (with ``score(users)``) the model scores with, for post-training compression and
        ONNX export (recux.compression); None: the model has none (default)."""
        return None

    def score_with_history(self, users: np.ndarray, history: Interactions) -> np.ndarray | None:
        """(len(users), n_items) scores of ``users`` as if their interactions were their rows of ``history`` (the
        fitted code space), without refitting: ``score_histories`` of their time-ordered items (perturbation
        stability, recux.stability). None: the model has no ``score_histories``, i.e. it cannot fold a new
        history in without refitting (e.g. matrix factorisation, whose user vectors are learnt in training)."""
        if type(self).score_histories is Recommender.score_histories:
            return None
        from recux.sequences import user_histories

        return self.score_histories(user_histories(history, users))

    def save(self, path: str | Path) -> None:
        """Persist the fitted model (default: pickle of the object)."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj
