"""Where the push bytes go: the benchmark's register as one push, with parts left out.

    uv run python bench/wire_profile.py            # about 1 minute

Fills an officer's store (2,000 dossiers with their intake events) and an auditor's (126 audits,
answered one item at a time) as `bench/sync_link.py` does, folds the outbox as a push does, writes
it in the one-clock form, and prints raw JSON, zstd-15 and gzip-6 sizes of: the wire as sent by a
client that sends every id, then without `mutation_id`, without `device_id`, with clocks as deltas
from the batch's first stamp ([ms, counter] when the node is the batch's), without any clock,
without clocks and ids (mutation, device, record, ward and `*_id` fields), the values alone, and
the content floor of `bench/sync_link.py`.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.domain import reference  # noqa: E402
from app.domain.mutations import clock_table, leave_out_derived_id, one_clock  # noqa: E402
from app.storage import create_store  # noqa: E402
from app.sync import coalesce  # noqa: E402
from bench import sync_link as link  # noqa: E402

ZSTD = zstandard.ZstdCompressor(level=15)


def sizes(obj) -> str:
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    zstd, gz = len(ZSTD.compress(raw)), len(gzip.compress(raw, 6))
    return f"{len(raw) / 1000:8.0f} {zstd / 1000:8.1f} {gz / 1000:8.1f}"


def without_clocks(m: dict) -> dict:
    fields = {k: {"value": v["value"]} for k, v in m["fields"].items()}
    return {**{k: v for k, v in m.items() if k != "hlc"}, "fields": fields}


def without_ids(m: dict) -> dict:
    m = without_clocks(m)
    for key in ("mutation_id", "device_id", "entity_id", "ward_code"):
        m.pop(key)
    m["fields"] = {
        k: v for k, v in m["fields"].items() if not k.endswith("_id") and k != "ward_code"
    }
    return m


def with_deltas(wire: list[dict]) -> list[dict]:
    first = wire[0].get("hlc") or next(iter(wire[0]["fields"].values()))["hlc"]
    base, node = int(first.split(":")[0]), first.split(":", 2)[2]

    def delta(stamp: str):
        wall, counter, who = stamp.split(":", 2)
        return [int(wall) - base, int(counter)] if who == node else stamp

    out = []
    for m in wire:
        m = dict(m)
        if "hlc" in m:
            m["hlc"] = delta(m["hlc"])
        m["fields"] = {
            k: {**v, "hlc": delta(v["hlc"])} if "hlc" in v else v for k, v in m["fields"].items()
        }
        out.append(m)
    return out


def with_spaced_clocks(wire: list[dict], seed: int = 7) -> list[dict]:
    """The wire with each record's distinct clocks moved 5-120 s apart, in their order: an
    auditor answers one item after another, not within the same milliseconds as the benchmark
    fills them. Ids are left as they are (the derived ids no longer match: all are sent)."""
    rng = random.Random(seed)
    out = []
    for m in wire:
        stamps = sorted({f["hlc"] for f in m["fields"].values() if "hlc" in f})
        if len(stamps) < 2:
            out.append(m)
            continue
        wall = int(stamps[0].split(":")[0])
        moved = {}
        for stamp in stamps:
            _, counter, node = stamp.split(":", 2)
            moved[stamp] = f"{wall:016d}:{counter}:{node}"
            wall += rng.randint(5_000, 120_000)
        fields = {k: {**f, "hlc": moved[f["hlc"]]} for k, f in m["fields"].items()}
        out.append({**m, "fields": fields})
    return out


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def with_random_ids(wire: list[dict], made: set[str]) -> list[dict]:
    """The wire with each id in `made` (record ids made on the device) given 74 random bits
    after its milliseconds, the same new id wherever it appears."""
    fresh: dict[str, str] = {}

    def swap(match: re.Match) -> str:
        old = match.group(0)
        if old not in made:
            return old
        if old not in fresh:
            r = os.urandom(10).hex()
            fresh[old] = f"{old[:13]}-7{r[:3]}-{'89ab'[int(r[3], 16) & 3]}{r[4:7]}-{r[8:20]}"
        return fresh[old]

    text = json.dumps(wire, separators=(",", ":"), ensure_ascii=False)
    return json.loads(UUID.sub(swap, text))


def profile(name: str, store) -> None:
    rows = store.sync.pending_mutations(10**9)
    wire = [one_clock(g.mutation.model_dump(mode="json")) for g in coalesce.fold(rows)]
    content: dict[str, list] = {}
    for m in map(without_ids, wire):
        content.setdefault(m["entity"], []).append({k: v["value"] for k, v in m["fields"].items()})
    print(f"{name}: {len(wire)} wire mutations; KB raw, zstd-15, gzip-6")
    variants = [
        ("every mutation_id sent", wire),
        ("without mutation_id", [{k: v for k, v in m.items() if k != "mutation_id"} for m in wire]),
        ("without device_id", [{k: v for k, v in m.items() if k != "device_id"} for m in wire]),
        ("clocks as deltas from the batch", with_deltas(wire)),
        ("without clocks", [without_clocks(m) for m in wire]),
        ("without clocks and ids", [without_ids(m) for m in wire]),
        ("content floor (values by entity)", content),
    ]
    sent = [leave_out_derived_id(clock_table(m), store.incarnation) for m in wire]
    made = {m["entity_id"] for m in wire}
    spaced = with_spaced_clocks(wire)
    variants += [
        ("as sent after the first answer", sent),
        ("the same, random record ids", with_random_ids(sent, made)),
        ("each clock in full (before tables)", [leave_out_derived_id(m, store.incarnation)
                                                for m in wire]),
        ("clocks 5-120 s apart, each in full", spaced),
        ("clocks 5-120 s apart, as tables", [clock_table(m) for m in spaced]),
    ]
    for label, obj in variants:
        print(f"  {label:34} {sizes(obj)}")


def main() -> None:
    rng = random.Random(7)
    hanoi = [w.code for w in reference.wards("01")]
    with tempfile.TemporaryDirectory(prefix="bench-wire-") as tmp:
        officer = create_store(Path(tmp) / "officer", link.PIN, settings=link.KEYS)
        link._fill_dossiers(officer, hanoi[0], 2000, rng)
        profile("dossiers", officer)
        officer.close()
        auditor = create_store(Path(tmp) / "auditor", link.PIN, settings=link.KEYS)
        link._fill_audits(auditor, hanoi, rng)
        profile("audits", auditor)
        auditor.close()


if __name__ == "__main__":
    main()
