"""Changes written column by column (issue 13's ninth round: the wire's bytes).

A pull page repeats, for every record, the same keys ("entity", "fields", each field's name,
"value") between values of one kind. zstd finds the repetition but still pays for it, and
it keeps like values (every dossier's code, every received date) apart. Written as blocks
of columns, one block per shape of change, a page of the benchmark's register takes about
half the zstd bytes of the same page row by row, below the content floor's gzip-6 of the
values alone (docs/benchmarks.md).

A block: `{"paths": [["entity"], ["fields", "code", "value"], ...], "at": [...], "cols":
[[...], ...]}`. A path of one key is a change's own member, a path of three a field's member.
`at` holds the positions of the block's changes in the page, each as its distance from the
one before (the first from -1), so that the page's order is kept exactly; `cols[i][j]` is the
value of `paths[i]` in the block's j-th change. Reading is strict: a malformed page is
refused whole (ValueError), never read in part.
"""

from __future__ import annotations

from typing import Any

Path = tuple[str, ...]


# A change taken apart: its shape (the paths, in order) and the values along them.
Flat = tuple[tuple[Path, ...], list[Any]]


def to_columns(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes as blocks of columns, one block per shape (its paths, in order)."""
    return blocks_of([flatten(change) for change in changes])


def blocks_of(flats: list[Flat]) -> list[dict[str, Any]]:
    """`to_columns` of changes already taken apart (`flatten`): a server keeps them so."""
    blocks: dict[tuple[Path, ...], dict[str, Any]] = {}
    last: dict[tuple[Path, ...], int] = {}
    for position, (paths, values) in enumerate(flats):
        block = blocks.get(paths)
        if block is None:
            block = blocks[paths] = {
                "paths": [list(p) for p in paths],
                "at": [],
                "cols": [[] for _ in paths],
            }
            last[paths] = -1
        block["at"].append(position - last[paths])
        last[paths] = position
        for column, value in zip(block["cols"], values, strict=True):
            column.append(value)
    return list(blocks.values())


def from_columns(blocks: Any, max_changes: int) -> list[dict[str, Any]]:
    """The changes, in their page's order, from `to_columns`' blocks. ValueError for anything
    else: not blocks, a path of another form or twice in a block, columns of other lengths
    than `at`, positions that are not each of 0..n-1 once, more than `max_changes`."""
    if not isinstance(blocks, list):
        raise ValueError("columns: not a list of blocks")
    placed: dict[int, dict[str, Any]] = {}
    for block in blocks:
        paths, at, cols = _block_parts(block)
        position = -1
        for j, step in enumerate(at):
            if not isinstance(step, int) or isinstance(step, bool) or step < 1:
                raise ValueError("columns: a position does not follow the one before")
            position += step
            if position >= max_changes or position in placed:
                raise ValueError("columns: a position past the bound or taken twice")
            placed[position] = _unflatten(paths, [column[j] for column in cols])
    if sorted(placed) != list(range(len(placed))):
        raise ValueError("columns: the positions leave a gap")
    return [placed[i] for i in range(len(placed))]


def flatten(change: dict[str, Any]) -> Flat:
    """The change's shape and values; `_unflatten` puts it back together."""
    paths: list[Path] = []
    values: list[Any] = []
    for key, value in change.items():
        if key == "fields" and _spreadable(value):
            for name, member in value.items():
                for part, inner in member.items():
                    paths.append(("fields", name, part))
                    values.append(inner)
        else:
            paths.append((key,))
            values.append(value)
    return _shared(tuple(paths)), values


# Shapes already seen, so that changes of one shape share one tuple of paths (a server keeps
# changes taken apart: per change, its own paths weighed more than its values). Emptied when
# full, so that no run of odd shapes grows it without bound.
_SHAPES: dict[tuple[Path, ...], tuple[Path, ...]] = {}
_SHAPES_MAX = 256


def _shared(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    found = _SHAPES.get(paths)
    if found is not None:
        return found
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    _SHAPES[paths] = paths
    return paths


def _spreadable(fields: Any) -> bool:
    """Fields that come back the same from their paths: some, each a member that has some.
    Others (none, say) go whole, as the path ["fields"]."""
    return (
        isinstance(fields, dict)
        and bool(fields)
        and all(isinstance(member, dict) and member for member in fields.values())
    )


def _block_parts(block: Any) -> tuple[list[Path], list[Any], list[list[Any]]]:
    if not isinstance(block, dict) or set(block) != {"paths", "at", "cols"}:
        raise ValueError("columns: a block is not {paths, at, cols}")
    paths, at, cols = block["paths"], block["at"], block["cols"]
    if not (isinstance(paths, list) and isinstance(at, list) and isinstance(cols, list)):
        raise ValueError("columns: a block's parts are not lists")
    if len(cols) != len(paths) or any(not isinstance(c, list) or len(c) != len(at) for c in cols):
        raise ValueError("columns: a block's columns do not match its paths and positions")
    checked = [_path(p) for p in paths]
    if len(set(checked)) != len(checked):
        raise ValueError("columns: a path twice in a block")
    if ("fields",) in checked and any(len(p) == 3 for p in checked):
        raise ValueError("columns: fields both whole and spread in a block")
    return checked, at, cols


def _path(path: Any) -> Path:
    ok = isinstance(path, list) and all(isinstance(p, str) for p in path)
    if ok and len(path) == 1:
        return (path[0],)
    if ok and len(path) == 3 and path[0] == "fields":
        return (path[0], path[1], path[2])
    raise ValueError('columns: a path is neither [member] nor ["fields", name, member]')


def _unflatten(paths: list[Path], values: list[Any]) -> dict[str, Any]:
    change: dict[str, Any] = {}
    for path, value in zip(paths, values, strict=True):
        if len(path) == 1:
            change[path[0]] = value
        else:
            change.setdefault("fields", {}).setdefault(path[1], {})[path[2]] = value
    return change
