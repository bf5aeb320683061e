"""The normalizer keeps every byte offset and line, and turns kernel idioms into C the
grammar takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, FIXTURES

from irqlint.kb import KnowledgeBase
from irqlint.normalize import blank_alternatives, normalize
from irqlint.parse import parse

KB = KnowledgeBase.load("linux")

KERNELISH = b"""\
static DEFINE_SPINLOCK(foo_lock);
#define wrap(x) do { spin_lock(x); } while (0)
#if 0
this is not C at all {
#endif
static int __init __must_check probe(struct foo __user *p, void __iomem *base)
	__acquires(&p->lock)
{
	struct bar *b = container_of(p, struct bar, foo);
	size_t off = offsetof(struct bar, foo);

	list_for_each_entry(b, &p->list, node) {
		hlist_for_each_entry_safe(x, n, &b->h, node)
			x->v++;
	}
	/* iterate again */
	for_each_set_bit(i, &mask, 32)
		use(i);
	idr_for_each(&idr, cb, NULL);
	scoped_guard(spinlock_irqsave, &p->lock) {
		p->v = 1;
	}
	return 0;
}
"""


def test_offsets_and_lines_preserved() -> None:
    n = normalize(KERNELISH, KB)
    assert len(n.text) == len(KERNELISH)
    assert [i for i, c in enumerate(n.text) if c == 10] == \
        [i for i, c in enumerate(KERNELISH) if c == 10]


def test_kernel_idioms_parse_without_errors() -> None:
    assert parse(KERNELISH).root_node.has_error
    n = normalize(KERNELISH, KB)
    assert not parse(n.text).root_node.has_error, n.text.decode()


def test_facts_recorded_before_blanking() -> None:
    n = normalize(KERNELISH, KB)
    assert [(k, a) for _, k, a in n.annotations] == [("acquires", "&p->lock")]
    (off, name), = n.guard_loops.items()
    assert name == "scoped_guard" and KERNELISH[off:].startswith(b"scoped_guard(")
    assert b"idr_for_each(&idr" in n.text  # a real call stays a call


def test_alternatives_keep_first_branch() -> None:
    src = b"void f(void)\n{\n#ifdef A\n\tif (a) {\n#else\n\tif (b) {\n#endif\n\t\tg();\n\t}\n}\n"
    assert parse(src).root_node.has_error
    alt = blank_alternatives(src)
    assert len(alt) == len(src) and b"if (b)" not in alt
    assert not parse(alt).root_node.has_error


@pytest.mark.parametrize("path", sorted([*EXAMPLES.rglob("*.[ch]"), *FIXTURES.rglob("*.[ch]")]),
                         ids=lambda p: str(p.relative_to(p.parents[2])))
def test_our_c_files_parse_cleanly(path: Path) -> None:
    src = path.read_bytes()
    n = normalize(src, KB)
    assert len(n.text) == len(src)
    assert not parse(n.text).root_node.has_error


def test_if0_keeps_the_else_branch() -> None:
    src = b"void f(void)\n{\n#if 0\n\told(;\n#else\n\tnew_call();\n#endif\n}\n"
    n = normalize(src, KB)
    assert len(n.text) == len(src)
    assert b"old" not in n.text and b"new_call();" in n.text and b"#endif" not in n.text
    assert not parse(n.text).root_node.has_error
