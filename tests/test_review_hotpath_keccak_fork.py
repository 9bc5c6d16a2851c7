"""Review of the hot path (issue 13): the shared Keccak state's lock survives a fork.

A fork made while another thread was hashing copied the lock as held into the child, which then hung on
its first order hash (the child of a process that signs from threads: signing.py drops its salt pool in a
forked child, so forked children are meant to sign)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
from eth_hash.auto import keccak as eth_keccak

from pmbot.polymarket import keccak as mod


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_fork_while_another_thread_holds_the_state_leaves_the_child_a_working_keccak() -> None:
    assert mod.DIRECT
    lock = mod._LOCK
    held = threading.Event()

    def holder() -> None:
        with lock:  # another thread inside keccak256 at the moment of the fork
            held.set()
            time.sleep(0.3)

    t = threading.Thread(target=holder)
    t.start()
    held.wait()
    pid = os.fork()
    if pid == 0:  # the child: hash once, or be killed by the alarm (a hang)
        signal.alarm(5)
        try:
            ok = mod.keccak256(b"abc") == eth_keccak(b"abc")
        finally:
            sys.stdout.flush()
        os._exit(0 if ok else 1)
    t.join()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child hung on the keccak lock (status {status})"
    assert os.WEXITSTATUS(status) == 0
    assert mod.keccak256(b"abc") == eth_keccak(b"abc")  # and the parent's still works
