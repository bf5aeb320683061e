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


@pytest.mark.parametrize("define, dead", [
    (b"#define DUMP_IT 0 /* debug */\n", True),
    (b"#define DUMP_IT (0)\n", True),
    (b"#define DUMP_IT 1\n", False),
    (b"#define DUMP_IT 0\n#undef DUMP_IT\n#define DUMP_IT 1\n", False),
    (b"", False),  # defined elsewhere, if at all
])
def test_if_name_the_file_defines_as_0(define: bytes, dead: bool) -> None:
    src = define + b"void f(void)\n{\n#if DUMP_IT\n\tdump();\n#else\n\tquiet();\n#endif\n}\n"
    n = normalize(src, KB)
    assert len(n.text) == len(src)
    assert (b"dump()" not in n.text) == dead and b"quiet();" in n.text


# Shapes of real kernel and selftest code (written here in a few lines each) that the grammar
# only takes after normalizing: (source, [(function, line)]).
_BPF_SELFTEST = b"""\
SEC("socket")
__description("sdiv: check 1")
__success __success_unpriv __retval(-20)
__naked void sdiv_check(void)
{
	asm volatile (
	LOOKUP_INSNS(bpf_sk_lookup_tcp)
"	r0 = %[val];					\\
	call %[helper];					\\
	exit;						\\
"	:
	: __imm(helper),
		__imm_const(val, sizeof(struct foo)),
		__imm_addr(map)
	: __clobber_all);
}

SEC("tc")
__failure __msg("Unreleased reference")
int after(void *ctx)
{
	return 0;
}
"""

_MACRO_RUN = b"""\
const char *cmd_name(enum cmd cmd)
{
	switch (cmd) {
	N(UP) N(DOWN)
	N(REBOOT)
	}
	return "UNKNOWN";
}

static int next(int a)
{
	return a;
}
"""

_STRING_MACROS = b"""\
static int ord(struct dev *d, u64 v)
{
	printk(KERN_WARNING DRV_NAME ": bad ordinal "
		"%" PRIu64 "\\n", v);
	pr_info("version v" __stringify(MAJOR) "." __stringify(MINOR) "\\n");
	FAIL(d, "\\"name\\" is wrong");	/* No "reg", that's fine */
	emit(d, "SEC(\\"%s\\") ", name(d));
	return ret(d, (char *)"x", L"y");
}
"""

_BLOCK_MACROS = b"""\
static int loops(struct ctx *c)
{
	int i;

	bpf_for(i, 0, 10) {
		c->v += i;
	}
	with_intel_runtime_pm(c->rpm, wf) {
		c->w = 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = &pkt,
		.perf_event.cookie = 1,
	);
	if (tg3_flag(c, 5780_CLASS) || link_mode(c, 1000baseT_Full))
		snprintf(c->buf, 8, "%08x_", i);
	return 0;
}
"""

_LOCK_ATTRIBUTES = b"""\
static void create_tasks(struct sched *s)
	EXCLUSIVE_LOCK_FUNCTION(s->start_mutex)
	EXCLUSIVE_LOCK_FUNCTION(s->done_mutex)
{
	mutex_lock(&s->start_mutex);
	mutex_lock(&s->done_mutex);
}
"""

_STATEMENT_ARGS = b"""\
static int init(struct hwmgr *h, long value ATTRIBUTE_UNUSED)
{
	static DECLARE_BITMAP(seen, 64);
	int ret = setup(h);

	PP_ASSERT_WITH_CODE(!ret, "Failed to init!", return ret);
	CHECK_OR(ret, break);
	return ret;
}
"""



@pytest.mark.parametrize(("src", "functions"), [
    (_BPF_SELFTEST, [("sdiv_check", 4), ("after", 20)]),
    (_MACRO_RUN, [("cmd_name", 1), ("next", 10)]),
    (_STRING_MACROS, [("ord", 1)]),
    (_BLOCK_MACROS, [("loops", 1)]),
    (_LOCK_ATTRIBUTES, [("create_tasks", 1)]),
    (_STATEMENT_ARGS, [("init", 1)]),
], ids=["bpf-selftest", "macro-run", "string-macros", "block-macros", "lock-attributes",
        "statement-args"])
def test_macro_shapes_parse_into_functions(src: bytes, functions: list[tuple[str, int]]) -> None:
    from irqlint.extract import extract_file
    from irqlint.macros import Wrappers

    n = normalize(src, KB)
    assert len(n.text) == len(src)
    assert [i for i, c in enumerate(n.text) if c == 10] == [i for i, c in enumerate(src) if c == 10]
    assert not parse(n.text).root_node.has_error, n.text.decode()
    facts = extract_file("shape.c", src, KB, Wrappers.build([], set(KB.lock_apis)))
    assert [(f.name, f.line) for f in facts.functions] == functions
    assert not any(f.has_error for f in facts.functions) and facts.failed_functions == 0


def test_string_macros_leave_literals_and_comments_alone() -> None:
    text = normalize(_STRING_MACROS, KB).text
    for kept in (b'"\\"name\\" is wrong"', b'/* No "reg", that\'s fine */',
                 b'"SEC(\\"%s\\") "', b'(char *)"x", L"y"', b'"%"        "\\n"'):
        assert kept in text, kept
    for gone in (b"DRV_NAME", b"PRIu64", b"__stringify"):
        assert gone not in text, gone


def test_block_macros_and_digit_words() -> None:
    text = normalize(_BLOCK_MACROS, KB).text
    assert b"\twhile  (i, 0, 10) {" in text
    assert b"\twhile" + b" " * 16 + b"(c->rpm, wf) {" in text
    assert b" data_in = &pkt," in text and b" perf_event.cookie = 1 \n" in text
    assert b"_780_CLASS" in text and b"_000baseT_Full" in text and b'"%08x_"' in text
    # a function defined through a macro at column 0 is not a block
    src = b"DEFINE_TEST(foo)\n{\n\treturn;\n}\n"
    assert normalize(src, KB).text == src


def test_swallowed_count_takes_only_bodies_after_a_header() -> None:
    """A `{` alone on a line inside a top-level ERROR is a lost function body only after a
    header ending in `)`; the entries of an #included table fragment are not functions."""
    from types import SimpleNamespace

    from irqlint.extract import _count_swallowed, extract_file
    from irqlint.ir import FileFacts
    from irqlint.macros import Wrappers

    frag = b'{\n\t"one",\n\t.insns = {\n\t},\n},\n/* next */\n{\n\t"two",\n},\n'
    src = frag + b"static int f(int a)\n\t__must_hold(&l)\n{\n\treturn a;\n}\n"
    facts = FileFacts("t.c")
    error = SimpleNamespace(type="ERROR", start_byte=0, end_byte=len(src))
    _count_swallowed(SimpleNamespace(children=[error]), facts, src)  # type: ignore[arg-type]
    assert facts.failed_functions == 1
    whole = extract_file("frag.c", frag, KB, Wrappers.build([], set(KB.lock_apis)))
    assert whole.functions == [] and whole.failed_functions == 0


@pytest.mark.parametrize("before, after, dead", [
    (b"#define final_version\n", b"", True),
    (b"#define final_version 1 /* release */\n", b"", True),
    (b"", b"#define final_version\n", False),  # a header guard: defined after its test
    (b"#ifdef CONFIG_X\n#define final_version\n#endif\n", b"", False),  # not surely defined
    (b"#define final_version\n#undef final_version\n", b"", False),
])
def test_ifndef_name_the_file_defines_before(before: bytes, after: bytes, dead: bool) -> None:
    for test in (b"#ifndef final_version", b"#if !defined(final_version)"):
        src = before + b"void f(void)\n{\n" + test + b"\n\tfree_irq(irq, dev);\n#else\n" \
            b"\tquiet();\n#endif\n" + after + b"}\n"
        n = normalize(src, KB)
        assert len(n.text) == len(src)
        assert (b"free_irq" not in n.text) == dead and b"quiet();" in n.text
