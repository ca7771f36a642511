"""Files written whole or not at all: a temporary file beside the target, renamed over it. A Ctrl-C, a full
disk or a reader polling for the file never sees half of one."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# Tries at a free temporary name: each is random, so a clash means another writer of the same file right now.
_NAME_TRIES = 100


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A new file beside `path` (a random hidden name, made only if nobody else has it), open for writing, with
    the permissions a new file gets (0666 less the umask, as the shell and the editors give) or, if `path`
    exists, its permissions. tempfile.mkstemp is not used because it makes every file 0600: templates and
    parameter files only their owner could read."""
    for _ in range(_NAME_TRIES):
        temporary = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.partial")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.chmod(handle, stat.S_IMODE(os.stat(path).st_mode))
        return handle, temporary
    raise FileExistsError(f"no free temporary name beside {path} after {_NAME_TRIES} tries")


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8, line endings as given) to `path` whole, making its directory if missing: a temporary
    file beside it, synced to disk, then renamed over it. Raises OSError (the temporary file removed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _temporary_beside(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
