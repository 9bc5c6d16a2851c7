"""Keccak-256 for the order path: the same C code eth_hash runs (pycryptodome's `_keccak`), called
directly, with one reusable state.

Why. eth_hash's `keccak(data)` builds a pycryptodome hash object per call: a state allocated and freed,
five ctypes calls, each converting its arguments through pycryptodome's wrappers. Warm that is ~4 µs, but
an order is signed after the process sat idle waiting for a tick, with its caches cold, and then the
same call measured 70 µs (p50, after evicting the caches; this module's path 28 µs). Signing is on every
order's path before its write-ahead commit, so this is latency the trader pays.

The library is loaded with `ctypes.PyDLL`, which keeps the GIL during each call (~1 µs: nothing to gain
from releasing it), and a lock keeps the state's reset → absorb → squeeze → read sequence whole when
threads share it (the GIL may switch threads between two calls). If the
library cannot be used (a pycryptodome without these symbols), `keccak256` is eth_hash's, unchanged;
tests/test_keccak.py checks both against known digests.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

from eth_hash.auto import keccak as _eth_keccak

_KECCAK_PAD = 0x01  # Keccak's original padding (SHA-3 uses 0x06): Ethereum's keccak256
# The shared state's lock. A fork copies a lock held by another thread as held, for good, in the child
# (whose first order would then hang): it is taken around every fork, so the child's copy is free and its
# state is never caught half way through a hash (signing.py likewise drops its salts in a forked child).
_LOCK = threading.Lock()
os.register_at_fork(before=_LOCK.acquire, after_in_parent=_LOCK.release, after_in_child=_LOCK.release)


def _direct() -> Callable[[bytes], bytes]:
    from Crypto.Hash.keccak import _raw_keccak_lib  # type: ignore[attr-defined]  # pycryptodome's own loader

    lib = ctypes.PyDLL(_raw_keccak_lib._name)
    init, reset, absorb, digest = lib.keccak_init, lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
    init.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_uint8]
    reset.argtypes = [ctypes.c_void_p]
    absorb.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    digest.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint8]
    for f in (init, reset, absorb, digest):
        f.restype = ctypes.c_int
    handle = ctypes.c_void_p()
    if init(ctypes.byref(handle), 64, 24):  # capacity 2 × 32 bytes, 24 rounds: Keccak-256
        raise OSError("keccak_init failed")
    state = handle.value  # one per process, never freed: a few hundred bytes
    out = ctypes.create_string_buffer(32)
    lock = _LOCK

    def keccak256(data: bytes) -> bytes:
        with lock:
            # a non-zero return is a bad argument, which the fixed sizes here rule out
            if reset(state) or absorb(state, data, len(data)) or digest(state, out, 32, _KECCAK_PAD):
                raise ValueError("keccak failed")
            return out.raw

    if keccak256(b"") != _eth_keccak(b"") or keccak256(b"abc" * 100) != _eth_keccak(b"abc" * 100):
        raise OSError("keccak self-check failed")
    return keccak256


def _load() -> tuple[Callable[[bytes], bytes], bool]:
    try:
        return _direct(), True
    except (ImportError, AttributeError, OSError, ValueError):
        return _eth_keccak, False


keccak256, DIRECT = _load()

__all__ = ["DIRECT", "keccak256"]
