"""The README's plugin example is real code: it registers and runs through the pipeline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_pipeline import run

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_model_example_runs(tmp_path, monkeypatch):
    from recux import registry

    blocks = [b for b in _python_blocks() if '@register("model"' in b]
    assert blocks, "README lost its model plugin example"
    registry.load_plugins()  # built-ins first, so the copy below has them and the original stays complete
    monkeypatch.setattr(registry, "_REGISTRY", {k: dict(v) for k, v in registry._REGISTRY.items()})
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    results, _ = run(tmp_path, ["dataset=synthetic", "logger=none", "model=pop", "model.name=popular-recent",
                                "+model.window=2000"])
    assert results["model"]["name"] == "popular-recent"
    assert 0.0 < results["metrics"]["ndcg@10"] <= 1.0


@pytest.mark.parametrize("needle", ["make run", "make test", "recux -m", "recux-leaderboard", "recux-plugins",
                                    "recux-evaluate"])
def test_readme_shows_the_commands(needle):
    assert needle in README.read_text()
