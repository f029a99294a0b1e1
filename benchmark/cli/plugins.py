"""`recux-plugins`: list registered plugins of each kind with a one-line description (no torch import)."""

from __future__ import annotations

import argparse
import json
import sys

from recux import registry
from recux.errors import RecuxError


def _meta_text(info: registry.PluginInfo) -> str:
    if info.kind == "metric":
        direction = "higher is better" if info.meta.get("higher_is_better", True) else "lower is better"
        return f"[{direction}; needs {', '.join(sorted(info.meta.get('needs', ())))}]"
    if info.kind == "model":
        seq = "; sequential" if info.meta.get("protocol") == "sequential" else ""
        return f"[{info.meta.get('training')}{seq}]"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recux-plugins", description=__doc__)
    parser.add_argument("kind", nargs="?", choices=registry.KINDS, help="only this kind")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        plugins = registry.all_plugins()
    except RecuxError as exc:
        print(f"recux-plugins: error: {exc}", file=sys.stderr)
        return 2
    kinds = [args.kind] if args.kind else list(registry.KINDS)
    if args.json:
        out = {k: [{"name": p.name, "description": p.description, "origin": p.origin,
                    "meta": {m: (sorted(v) if isinstance(v, frozenset) else v) for m, v in p.meta.items()}}
                   for p in plugins[k]] for k in kinds}
        print(json.dumps(out, indent=2))
        return 0
    for kind in kinds:
        print(f"{kind}:")
        for p in plugins[kind]:
            print(f"  {p.name:<14} {p.description} {_meta_text(p)}".rstrip())
        if not plugins[kind]:
            print("  (none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
