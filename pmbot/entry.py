"""The `pmbot` console script: catches Ctrl-C from its first line, before the CLI's imports run.

The script that pip writes imports this module, then calls `main()`; importing `pmbot.cli` (Typer, Rich,
every command's declarations) happens inside `main()`, so a Ctrl-C during start-up ends as one line
"interrupted" and exit 130 instead of a traceback from the middle of an import.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def _stop_now(signum: int, frame: object) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)


# Until main() runs, a Ctrl-C ends the process at once: the script pip writes still has work to do
# between importing this module and calling main() (it rewrites sys.argv[0] with `re`).
if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
    signal.signal(signal.SIGINT, _stop_now)


def main() -> int:
    try:
        # From here on Ctrl-C is Python's KeyboardInterrupt again, so that commands clean up on the way out
        # (asyncio.run cancels its tasks, the store closes) before the CLI prints "interrupted".
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from pmbot.cli import main as run

        code = run()
    except KeyboardInterrupt:
        code = 130
        os.write(2, b"interrupted\n")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # From here the interpreter only flushes and shuts down: a Ctrl-C now must not raise a traceback.
    signal.signal(signal.SIGINT, _stop_now if code != 130 else signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
