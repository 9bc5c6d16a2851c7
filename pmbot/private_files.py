"""Directories and files only their owner can read: the database holds the trading history and the
lock files say which wallet trades here. Modes are set at creation, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and every missing parent 0700 (mkdir(parents=True) gives parents the umask's
    mode). Existing directories are left as they are: they may be shared on purpose."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(d, DIR_MODE)  # mkdir's mode is filtered by the umask; 0700 must hold even with umask 077
    return path


def touch_private(path: Path) -> None:
    """Create `path` 0600 if it does not exist (an existing file keeps its mode)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def open_private(path: Path) -> int:
    """An fd on `path` (read/write, created 0600 if missing); never follows a planted symlink."""
    private_dir(path.parent)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
