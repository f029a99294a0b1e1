"""Open Bandit Dataset (ZOZOTOWN fashion e-commerce, CC BY 4.0): logged bandit feedback of an A/B test.

Saito, Aihara, Matsutani, Narita, "Open Bandit Dataset and Pipeline: Towards Realistic and Reproducible
Off-Policy Evaluation", NeurIPS 2021 Datasets and Benchmarks (arXiv:2008.07146). Two logging policies (uniform
``random`` and Bernoulli Thompson sampling ``bts``) ran side by side on three campaigns (``all``, ``men``,
``women``); each round shows 3 items (positions) and logs the click and the true propensity.

``load()`` returns ``recux.bandit.BanditLogs`` (both policies' logs of one campaign + the BTS prior), not a
ranking ``Dataset``: rounds carry propensities and positions and have no user ids (see ``recux.bandit``). Use
it with ``task=ope``.

Versions and sources:
- ``small`` (default): 10,000 rounds per (policy, campaign). Sources, in order: a local copy (``path``), the
  cache (``$RECUX_DATA/obd/small``), the dataset authors' repository (raw files of st-tech/zr-obp ``obd/``), then
  the copy shipped inside the ``obp==0.4.1`` wheel on PyPI. Every file is checked against the sha256 below.
- ``full``: ~26M rounds, the zip from the authors' release page (``FULL_URL``). Its checksum is not pinned here
  (not published by the authors); pass ``full_sha256`` to download it, or unzip it yourself and set ``path``.

Preprocessing follows OBP's ``OpenBanditDataset`` (obp/dataset/real.py) so that estimates match OBP's: rows
sorted by timestamp (numpy quicksort, as pandas' ``sort_values``), position = dense rank of the logged position
minus 1, context = one-hot of the four ``user_feature_*`` columns with the first (lexicographically smallest)
category of each dropped (``pd.get_dummies(drop_first=True)``), action context = label-encoded
``item_feature_1..3`` then the numeric ``item_feature_0`` (OBP >= 0.5; obp 0.4.1 also kept the item id as a
numeric column, which changes the logistic reward model and so DM/DR).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recux.bandit import BanditFeedback, BanditLogs
from recux.download import ENV_VAR, data_home, fetch_url, fetch_wheel_members, sha256_file, verify_sha256
from recux.errors import DataError, DataUnavailableError
from recux.registry import register

NAME = "obd"
POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
VERSIONS = ("small", "full")
SOURCES = ("auto", "github", "pypi")

# The full dataset as the authors' docs give it (https://research.zozo.com/data.html).
FULL_URL = "https://research.zozo.com/data_release/open_bandit_dataset.zip"
GITHUB_RAW = "https://raw.githubusercontent.com/st-tech/zr-obp/master/obd/"
GITHUB_PRIOR = "https://raw.githubusercontent.com/st-tech/zr-obp/master/obp/policy/conf/prior_bts.yaml"
OBP_REQUIREMENT = "obp==0.4.1"
_WHEEL_DATA = "obp/dataset/obd/"
_WHEEL_PRIOR = "obp/policy/conf/prior_bts.yaml"
# Computed from obp-0.4.1-py3-none-any.whl (sha256 87dec9caf4283c25ab13036532e0a24566f1c7bdcad1653a8ded43b2f5ef8208);
# the item_context.csv files equal those in st-tech/zr-obp obd/ at master.
SMALL_SHA256 = {
    "random/all/all.csv": "7168295b6e0a9eabcf3392320a5dd434e542b68e705d5cd9491499af589812f1",
    "random/all/item_context.csv": "eba04cc23d5f130a93ff174c5392986882b94c3839433cb8143870eaa6221358",
    "random/men/men.csv": "ede6d08c6877f99cd3770f7d09e26c738e6aa6de4445ccccfb1356ba5d06b1eb",
    "random/men/item_context.csv": "6d855c2b7e917d0448d71bbe62c023147495882c0fdc8c41e86fef86abf9fe09",
    "random/women/women.csv": "e65f3bd3beb17664fa69cc129bf7bf852a775f8ffa630506e505fc905315bb34",
    "random/women/item_context.csv": "b1ca4905f97703d196004f2ad4552c1e90c2afad8b50688d333b0d2dc0b33147",
    "bts/all/all.csv": "0ad874e4dbf6902f0845dd478ad8dde5ef6903583d3ffaace78411bdad064106",
    "bts/all/item_context.csv": "5d4359ba1cfa3ae88f0f1bae66bd633859fe6323817183632ee57b83539d9153",
    "bts/men/men.csv": "db6d1f7ed2d591ba521533e45286d4c1fba7fe57a8ad2e80342210335f43c527",
    "bts/men/item_context.csv": "3b411ed6b0471316321a6b93f4f756bb25888eac6218cd71d0b603d41d85732d",
    "bts/women/women.csv": "e5d1b49a39b608585a2f3014a3f54970430cd37a495c1b73fceb85cdf428a5b8",
    "bts/women/item_context.csv": "a56295bad066a558eb783055afd9279f5f4e209a4776eafc22151c53f0ac89d4",
}
# The ZOZOTOWN production prior of the Bernoulli TS policy (obp/policy/conf/prior_bts.yaml, same in obp 0.5.5).
PRIOR_FILE = "prior_bts.yaml"
PRIOR_SHA256 = "81a54fbdc184021ccc62ab97de81ec35461c032e3d7f99ccaa0a9745f732d251"

Reader = Callable[[str], bytes]


def log_files(policy: str, campaign: str) -> tuple[str, str]:
    return f"{policy}/{campaign}/{campaign}.csv", f"{policy}/{campaign}/item_context.csv"


@register("dataset", NAME, fetch_params=("source", "download", "timeout", "full_sha256"))
class OpenBanditDataset:
    """Open Bandit Dataset: random and Bernoulli-TS logs of one ZOZOTOWN campaign (80 items, 3 positions)."""

    def __init__(
        self,
        campaign: str = "all",
        version: str = "small",
        path: str | None = None,
        source: str = "auto",
        download: bool = True,
        timeout: float = 60.0,
        full_sha256: str | None = None,
    ) -> None:
        for name, value, allowed in (("campaign", campaign, CAMPAIGNS), ("version", version, VERSIONS),
                                     ("source", source, SOURCES)):
            if value not in allowed:
                raise ValueError(f"dataset.{name} must be one of {allowed}, got {value!r}")
        self.campaign, self.version, self.source = campaign, version, source
        self.path = None if path in (None, "") else str(path)
        self.download, self.timeout = bool(download), float(timeout)
        self.full_sha256 = full_sha256 or None

    def load(self) -> BanditLogs:
        files = [f for p in POLICIES for f in log_files(p, self.campaign)]
        if self.path is not None:
            read, info = _local_reader(Path(self.path).expanduser(), files)
        elif self.version == "full":
            read, info = self._full_reader(files)
        else:
            read, info = self._small_reader(files)
        logs = {p: parse_log(read, p, self.campaign) for p in POLICIES}
        priors = {"bts": parse_prior(_prior_bytes(read), self.campaign)}
        return BanditLogs(logs=logs, priors=priors, info={**info, "dataset": NAME, "campaign": self.campaign,
                                                          "version": self.version})

    def _small_reader(self, files: list[str]) -> tuple[Reader, dict[str, Any]]:
        root = data_home() / NAME / "small"
        wanted = {f: SMALL_SHA256[f] for f in files} | {PRIOR_FILE: PRIOR_SHA256}
        if all((root / f).exists() for f in wanted):  # the cache, verified on every load (mismatch raises)
            return _verified_reader(root, wanted), _info("cache", root, wanted)
        tried: list[str] = []
        if not self.download:
            tried.append("download=false: nothing cached and downloads disabled")
        if self.download and self.source in ("auto", "github"):
            try:
                for f, digest in wanted.items():
                    url = GITHUB_PRIOR if f == PRIOR_FILE else GITHUB_RAW + f
                    fetch_url(url, root / f, digest, timeout=self.timeout)
                return _verified_reader(root, wanted), _info(f"github {GITHUB_RAW} (downloaded)", root, wanted)
            except Exception as exc:  # reported with the other sources below
                tried.append(f"{GITHUB_RAW}: {type(exc).__name__}: {exc}")
        if self.download and self.source in ("auto", "pypi"):
            try:
                wheel = _fetch_from_wheel(root, wanted, max(self.timeout, 300.0))
                return _verified_reader(root, wanted), {**_info(f"pypi {OBP_REQUIREMENT} (downloaded)", root,
                                                               wanted), **wheel}
            except Exception as exc:
                tried.append(f"PyPI wheel {OBP_REQUIREMENT} (pip download): {type(exc).__name__}: {exc}")
        lines = "\n".join(f"  - {t}" for t in tried)
        raise DataUnavailableError(
            f"Open Bandit Dataset (small) is not available. Sources tried (cache folder {root}):\n{lines}\n"
            f"Fix: `pip download {OBP_REQUIREMENT} --no-deps` elsewhere, unzip the wheel and pass "
            f"dataset.path=/path/to/obp/dataset/obd, or set ${ENV_VAR} to a folder that already holds the cache."
        )

    def _full_reader(self, files: list[str]) -> tuple[Reader, dict[str, Any]]:
        zip_path = data_home() / NAME / "open_bandit_dataset.zip"
        if self.full_sha256 is None:
            raise DataUnavailableError(
                f"dataset.version=full: the full dataset's checksum is not pinned in recux, so it is not "
                f"downloaded unverified. Fix: download {FULL_URL} yourself, unzip it and pass "
                "dataset.path=/path/to/open_bandit_dataset, or pass dataset.full_sha256=<sha256 of the zip>."
            )
        if not self.download and not zip_path.exists():
            raise DataUnavailableError(f"download=false and {zip_path} is not cached; set dataset.path instead.")
        fetch_url(FULL_URL, zip_path, self.full_sha256, timeout=max(self.timeout, 3600.0))
        zf = zipfile.ZipFile(zip_path)
        names = {n.split("open_bandit_dataset/", 1)[-1]: n for n in zf.namelist()}

        def read(f: str) -> bytes:
            if f not in names:
                raise DataError(f"{zip_path} has no {f}; it is not the Open Bandit Dataset zip.")
            return zf.read(names[f])

        return read, {"source": f"{FULL_URL} (sha256 {self.full_sha256})", "path": str(zip_path),
                      "sha256": {"open_bandit_dataset.zip": self.full_sha256}, "sha256_verified": True}


def _info(source: str, root: Path, sha: dict[str, str]) -> dict[str, Any]:
    return {"source": source, "path": str(root), "sha256": dict(sha), "sha256_verified": True}


def _verified_reader(root: Path, wanted: dict[str, str]) -> Reader:
    for f, digest in wanted.items():
        verify_sha256(root / f, digest)
    return lambda f: (root / f).read_bytes()


def _fetch_from_wheel(root: Path, wanted: dict[str, str], timeout: float) -> dict[str, str]:
    """One ``pip download`` per folder: fetch_wheel_members stores members under their base names."""
    folders: dict[str, dict[str, str]] = {}
    for f, digest in wanted.items():
        member = _WHEEL_PRIOR if f == PRIOR_FILE else _WHEEL_DATA + f
        folders.setdefault(str(Path(f).parent), {})[member] = digest
    provenance: dict[str, str] = {}
    for folder, members in folders.items():
        provenance = fetch_wheel_members(OBP_REQUIREMENT, members, root / folder, timeout=timeout)
    return provenance


def _local_reader(path: Path, files: list[str]) -> tuple[Reader, dict[str, Any]]:
    """A user's copy: a folder laid out as obd/ ({policy}/{campaign}/...), e.g. the unzipped full dataset."""
    for folder in (path, path / "open_bandit_dataset", path / "obd"):
        if all((folder / f).exists() for f in files):
            known = {f: SMALL_SHA256[f] for f in files}
            sha = {f: sha256_file(folder / f) for f in files}
            return (lambda f, d=folder: (d / f).read_bytes()), {
                "source": "local folder", "path": str(folder), "sha256": sha, "sha256_verified": sha == known,
            }
    raise DataError(
        f"dataset.path={path} does not hold {', '.join(files)}. Point it at the folder with the "
        "random/ and bts/ subfolders (obp/dataset/obd in the obp wheel, or the unzipped full dataset)."
    )


def _prior_bytes(read: Reader) -> bytes:
    try:
        return read(PRIOR_FILE)
    except (OSError, DataError):  # a user's copy without the prior: the pinned production values need the file
        raise DataError(
            f"{PRIOR_FILE} (the Bernoulli-TS prior, obp/policy/conf/ in the obp wheel) is missing next to the "
            "logs; copy it into dataset.path or leave dataset.path null to use the verified cache."
        ) from None


def parse_prior(data: bytes, campaign: str) -> dict[str, np.ndarray]:
    import yaml

    prior = yaml.safe_load(data)[campaign]
    return {"alpha": np.asarray(prior["alpha"], float), "beta": np.asarray(prior["beta"], float)}


def parse_log(read: Reader, policy: str, campaign: str) -> BanditFeedback:
    log_name, item_name = log_files(policy, campaign)
    data = pl.read_csv(io.BytesIO(read(log_name)), infer_schema_length=0)  # every column as text first
    order = np.argsort(np.asarray(data["timestamp"].to_list(), dtype=object), kind="quicksort")
    data = data[order]
    position_raw = data["position"].cast(pl.Int64).to_numpy()
    position = np.unique(position_raw, return_inverse=True)[1].astype(np.int64)  # dense rank - 1
    action = data["item_id"].cast(pl.Int64).to_numpy()
    user_cols = [c for c in data.columns if "user_feature" in c]
    context = np.concatenate([_one_hot_drop_first(data[c].to_numpy()) for c in user_cols], axis=1)
    items = pl.read_csv(io.BytesIO(read(item_name)), infer_schema_length=0)
    action_context = np.column_stack(
        [_label_encode(items[c].to_numpy().astype(str)) for c in ("item_feature_1", "item_feature_2",
                                                                   "item_feature_3")]
        + [items["item_feature_0"].cast(pl.Float64).to_numpy()]
    ).astype(float)
    return BanditFeedback(
        context=context.astype(float),
        action=action,
        position=position,
        reward=data["click"].cast(pl.Float64).to_numpy(),
        pscore=data["propensity_score"].cast(pl.Float64).to_numpy(),
        action_context=action_context,
        n_actions=int(action.max()) + 1,
        len_list=int(position.max()) + 1,
        policy=policy,
        campaign=campaign,
    )


def _one_hot_drop_first(values: np.ndarray) -> np.ndarray:
    """pandas.get_dummies(drop_first=True) of one text column: sorted categories, the first one dropped."""
    cats, codes = np.unique(values.astype(str), return_inverse=True)
    return (codes[:, None] == np.arange(1, len(cats))[None, :]).astype(np.uint8)


def _label_encode(values: np.ndarray) -> np.ndarray:
    """sklearn LabelEncoder: the index of each value among the sorted distinct values."""
    return np.unique(values, return_inverse=True)[1]
