"""TOML files read from disk: whatever is wrong with one comes back as one `TomlError`.

The site config, the limits files and the register maps are all TOML. Reading
one can fail in more ways than `tomllib.TOMLDecodeError`: the file may be
missing or unreadable (`OSError`), not UTF-8 (`UnicodeDecodeError`), or nest
arrays and inline tables so deeply that the recursive parser runs out of
stack (`RecursionError`). Each caller used to catch a different subset and
let the rest out as a traceback; here every one of them becomes a `TomlError`
with a sentence, and each caller wraps that in its own error type, naming
the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class TomlError(ValueError):
    """A TOML file that cannot be read; `str()` says why, without the file name.
    `missing` is set when the file does not exist."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text; `TomlError` when it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TomlError(f"not valid TOML: {e}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables by recursion.
        raise TomlError("not valid TOML: arrays or tables nested too deeply") from None


def load(path: str | Path) -> dict[str, Any]:
    """Read and parse the TOML file at `path`; `TomlError` for any failure."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise TomlError("no such file", missing=True) from None
    except IsADirectoryError:
        raise TomlError("is a folder, not a file") from None
    except OSError as e:
        raise TomlError(f"cannot read: {e.strerror or e}") from None
    except ValueError as e:  # a path with a NUL byte
        raise TomlError(f"cannot read: {e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TomlError(f"not UTF-8 text: {e.reason} at byte {e.start}") from None
    return loads(text)
