"""Per-file cache of extracted facts.

Keyed by content hash + path + tool version + knowledge-base digest + lock-wrapper digest, so a
changed file, a new irqlint or new knowledge re-extracts exactly what it must.  The tool version
is ``code_id()``: the release and a digest of irqlint's own sources (for the facts, of the
extractor's modules only), so a checkout that moved on (same release number, other code) never
reads what older code wrote.  Entries are
written to a temporary name and renamed (readers never see half a file); an entry that does not
unpickle or carries another key is discarded and rebuilt, never trusted.  A stat index
(path -> size, mtime, content hash, macros) lets a warm run skip re-reading unchanged files.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import re
import tempfile
from collections.abc import Iterable
from typing import Any

from . import __version__

MAGIC = "irqlint-cache-1"


# `from .x import ...`, `from ..x import ...` (a subpackage's), `from . import x, y`
_FROM_MODULE = re.compile(rb"^\s*from \.\.?(\w+)\S* import", re.MULTILINE)
_FROM_PACKAGE = re.compile(rb"^\s*from \. import ([\w, ]+)", re.MULTILINE)


@functools.cache
def code_id(entry: str = "") -> str:
    """irqlint's release and a digest of its Python sources (read once per process): all of
    them, or those the module `entry` (say "extract") imports, itself included."""
    root = os.path.dirname(os.path.abspath(__file__))
    if not entry:
        files = sorted(os.path.relpath(os.path.join(d, n), root)
                       for d, _, names in os.walk(root) for n in names if n.endswith(".py"))
    else:
        files, todo = [], [entry]
        while todo:
            mod = todo.pop()
            rel = mod.replace(".", os.sep) + ".py"
            if not os.path.exists(os.path.join(root, rel)):
                rel = os.path.join(mod.replace(".", os.sep), "__init__.py")
            if rel in files or not os.path.exists(os.path.join(root, rel)):
                continue
            files.append(rel)
            with open(os.path.join(root, rel), "rb") as f:
                text = f.read()
            todo.extend(m.group(1).decode() for m in _FROM_MODULE.finditer(text))
            todo.extend(w.decode() for m in _FROM_PACKAGE.finditer(text)
                        for w in re.findall(rb"\w+", m.group(1)))
        files.sort()
    h = hashlib.blake2b(digest_size=8)
    for rel in files:
        h.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            h.update(f.read())
    return f"{__version__}+{h.hexdigest()}"


def default_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "irqlint")


def discard(path: str) -> None:
    """Remove a cache file that is no use (corrupt, foreign, superseded), if it is there."""
    try:
        os.unlink(path)
    except OSError:
        pass


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Cache:
    def __init__(self, root: str | None) -> None:
        self.root = root
        if root is not None:
            os.makedirs(root, exist_ok=True)

    def key(self, path: str, chash: str, *digests: str) -> str:
        h = hashlib.blake2b(digest_size=16)
        # what a file's facts are depends on the extractor's code only
        for part in (MAGIC, code_id("extract"), os.path.abspath(path), chash, *digests):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    def _file(self, key: str) -> str:
        assert self.root is not None
        return os.path.join(self.root, "facts", key[:2], key + ".pkl")

    def get(self, key: str, full: bool = False) -> tuple[Any, Any] | None:
        """(head, body) of an entry; the body is only unpickled when `full` is asked for."""
        if self.root is None:
            return None
        try:
            with open(self._file(key), "rb") as f:
                magic, stored_key, head = pickle.load(f)
                if magic != MAGIC or stored_key != key:
                    raise ValueError("foreign entry")
                body = pickle.load(f) if full else None
        except FileNotFoundError:
            return None
        except Exception:  # corrupt or foreign: drop it, it will be rebuilt
            self._discard(key)
            return None
        return head, body

    def put(self, key: str, head: Any, body: Any) -> None:
        if self.root is None:
            return
        self._write(self._file(key), (MAGIC, key, head), body)

    def _discard(self, key: str) -> None:
        discard(self._file(key))

    def _write(self, target: str, *objs: Any) -> None:
        self.write_all(target, objs)

    def write_all(self, target: str, objs: Iterable[Any]) -> None:
        """Pickle `objs` one after another into `target`, atomically; an iterator's items are
        made, written and let go one at a time."""
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                for obj in objs:
                    pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
                    del obj
            os.replace(tmp, target)
        except BaseException:
            discard(tmp)
            raise

    # -- whole-run results -------------------------------------------------------------------
    RESULTS_KEPT = 4  # a few configurations (rule sets) of one tree side by side

    def get_results(self, key: str) -> Any:
        """The findings of an earlier run over exactly the same files, knowledge and rules."""
        if self.root is None:
            return None
        path = os.path.join(self.root, "results", key + ".pkl")
        try:
            with open(path, "rb") as f:
                magic, stored_key, value = pickle.load(f)
            if magic != MAGIC or stored_key != key:
                raise ValueError("foreign entry")
        except FileNotFoundError:
            return None
        except Exception:
            discard(path)
            return None
        os.utime(path)  # most recently used
        return value

    def put_results(self, key: str, value: Any) -> None:
        if self.root is None:
            return
        d = os.path.join(self.root, "results")
        self._write(os.path.join(d, key + ".pkl"), (MAGIC, key, value))
        entries = sorted((os.path.getmtime(os.path.join(d, e)), e) for e in os.listdir(d)
                         if e.endswith(".pkl"))
        for _, e in entries[:-self.RESULTS_KEPT]:
            discard(os.path.join(d, e))

    # -- stat index ------------------------------------------------------------------------
    def load_index(self) -> dict[str, tuple[Any, ...]]:
        if self.root is None:
            return {}
        try:
            with open(os.path.join(self.root, "index.pkl"), "rb") as f:
                magic, version, index = pickle.load(f)
            if magic == MAGIC and version == code_id() and isinstance(index, dict):
                return index
        except Exception:
            pass
        return {}

    def save_index(self, index: dict[str, tuple[Any, ...]]) -> None:
        if self.root is not None:
            self._write(os.path.join(self.root, "index.pkl"), (MAGIC, code_id(), index))
