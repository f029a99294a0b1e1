"""Read an offline W&B run file (.wandb, a LevelDB-style record log) into protobuf records, for assertions."""

from __future__ import annotations

import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run log"
    pos, out, pending = 7, [], b""
    while pos + HEADER <= len(data):
        block_left = BLOCK - (pos % BLOCK)
        if block_left < HEADER:  # trailer padding
            pos += block_left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if length == 0 and kind == 0:
            pos += block_left
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            payload = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            payload, pending = pending + chunk, b""
        else:
            break
        rec = pb.Record()
        rec.ParseFromString(payload)
        out.append(rec)
    return out


def summarize(path: str | Path) -> dict:
    """History keys, summary keys and whether a config record was written."""
    hist, summ, config = set(), {}, {}
    for r in read_records(path):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            hist |= {i.key or "/".join(i.nested_key) for i in r.history.item}
        elif kind == "summary":
            summ.update({i.key or "/".join(i.nested_key): i.value_json for i in r.summary.update})
        elif kind == "config":
            config.update({i.key: i.value_json for i in r.config.update})
        elif kind == "run":
            config.update({i.key: i.value_json for i in r.run.config.update})
    return {"history": hist, "summary": summ, "config": config}
