"""Files written whole or not at all: a temporary file beside the target, renamed over it. A Ctrl-C, a full
disk or a reader polling for the file never sees half of one."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

# Tries at a free temporary name: each is random, so a clash means another writer of the same file right now.
_NAME_TRIES = 100


def _permissions(path: Path) -> int | None:
    """The permission bits of what `path` names, for the file that replaces it; None when there is nothing to
    read them from (no such file, a dangling link or a loop: the new file gets a new file's)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8, line endings as given) to `path` whole, making its directory if missing: a temporary
    file beside it (a random hidden name, made only if nobody else has it), synced to disk, then renamed over it;
    a symbolic link at `path` is replaced by the file. The file gets `path`'s permissions if it exists, else a
    new file's (0666 less the umask, as the shell and editors give): not tempfile.mkstemp's 0600, which left
    templates and parameter files readable only by their owner. Raises OSError; whatever happens, even Ctrl-C,
    no temporary file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    permissions = _permissions(path)
    for _ in range(_NAME_TRIES):
        temporary = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.partial")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)  # made just before a Ctrl-C, if at all
            raise
        break
    else:
        raise FileExistsError(f"no free temporary name beside {path} after {_NAME_TRIES} tries")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            if permissions is not None:
                os.chmod(f.fileno(), permissions)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
