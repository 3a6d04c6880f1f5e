"""The server's folders are 0700 and its files 0600, whatever the process umask says."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create the file 0600 when missing (before any other code opens it), else make it 0600."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open with 0600 for a file it creates."""
    return os.open(path, flags, FILE_MODE)


def write_private(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write a whole file atomically (a 0600 temporary renamed over it), or fail if it exists
    when `exclusive` (two processes starting at once make one key, not two)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if not exclusive:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # appears whole, and only if nobody made it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def tighten_tree(root: Path) -> None:
    """Make an existing tree private: folders 0700, files 0600 (an upgraded data folder)."""
    root = Path(root)
    if not root.exists():
        return
    os.chmod(root, DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), DIR_MODE)
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                os.chmod(full, FILE_MODE)
