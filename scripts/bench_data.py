"""Time the data pipeline on MovieLens-100K: cached load, preprocessing and each split (prints milliseconds)."""

from __future__ import annotations

import time

import numpy as np

from recux import registry
from recux.preprocess import Preprocess
from recux.splitting import GlobalTemporalSplit, LeaveLastOut, RandomSplit, TemporalSplit


def best_ms(fn, repeat: int = 10) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.min(times))


def main() -> None:
    loader = registry.build("dataset", "ml-100k")
    ds = loader.load()  # the first call may download; time the cached path
    print(f"ml-100k load (cached, verified): {best_ms(loader.load, 5):8.1f} ms  [{ds.info['source']}]")
    print(f"synthetic load (500x300):        {best_ms(registry.build('dataset', 'synthetic').load):8.1f} ms")
    prep = Preprocess(rating_threshold=4, min_user_interactions=5, min_item_interactions=5)
    print(f"preprocess (>=4, 5-core):        {best_ms(lambda: prep.apply(ds)):8.1f} ms")
    for splitter in (RandomSplit(), TemporalSplit(), LeaveLastOut(), GlobalTemporalSplit()):
        ms = best_ms(lambda s=splitter: s.split(ds.interactions, seed=0))
        print(f"split {splitter.protocol:<26}{ms:8.1f} ms")


if __name__ == "__main__":
    main()
