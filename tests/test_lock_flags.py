"""A lock remembered in a flag (`locked = true;` where it is taken, `if (locked) unlock();`
later) in a function with more paths than the lock-state engine keeps apart: when it must
merge paths, it forgets the other tests first, and the flag still says which paths hold the
lock (tests/fixtures/lockflags)."""

from __future__ import annotations

from conftest import FIXTURES

SRC = FIXTURES / "lockflags" / "many_paths.c"


def _function(text: str, name: str):  # type: ignore[no-untyped-def]
    from irqlint.extract import extract_file
    from irqlint.kb import KnowledgeBase
    from irqlint.macros import Wrappers

    kb = KnowledgeBase.load("linux")
    ff = extract_file(str(SRC), text.encode(), kb, Wrappers.build([], set(kb.lock_apis)))
    return next(fn for fn in ff.functions if fn.name == name)


def _held_at(fn, line: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [cls for ln, _, h in fn.held if ln == line for cls, kind, _ in h
            if not kind.startswith("-")]


def test_flag_keeps_the_lock_apart_when_paths_merge() -> None:
    text = SRC.read_text()
    fn = _function(text, "mp_update")
    assert _held_at(fn, 51) == []  # mp_notify(): every path let go of the lock
    assert _held_at(fn, 48) == ["mp_dev::lock"]  # the unlock itself
    # without the release the lock is still held at the call
    fn = _function(text.replace("\t\tmutex_unlock(&p->lock);\n", "\t\tp->x = 0;\n"), "mp_update")
    assert _held_at(fn, 51) == ["mp_dev::lock"]
