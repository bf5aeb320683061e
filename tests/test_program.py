"""Whole-program rules: the seed shapes across files, with the functions on each chain, and
the shapes of tests/fixtures/program (function pointers, gfp pass-through, framework
callbacks, waits matched by object, a three-lock cycle) flagged exactly where marked."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, FIXTURES, all_rules_enabled, check_json, expected_markers, found


def _one(doc: dict, rule: str) -> dict:
    hits = [f for f in doc["findings"] if f["rule"] == rule]
    assert len(hits) == 1, [f["message"] for f in hits]
    return hits[0]


def _buggy(case: str) -> list[Path]:
    return [p for p in (EXAMPLES / case).iterdir() if p.name != "fixed"]


def test_seed001_wait_under_lock_chain() -> None:
    doc = check_json(*_buggy("seed001_wait_under_lock"))
    f = _one(doc, "wait-under-lock")
    assert (Path(f["file"]).name, f["line"], f["function"]) == (
        "evtchn_dev.c", 57, "evtchn_unbind_from_user")
    assert {"evtchn_unbind_from_user", "evtchn_bind_to_user", "evtchn_interrupt"} <= set(
        f["functions"])
    assert any(lk.endswith("port_user_lock") for lk in f["locks"])
    waiter, handler = f["traces"]
    assert waiter[-1]["note"].startswith("disable_irq(")
    assert handler[0]["note"].startswith("bind_evtchn_to_irqhandler() registers")
    assert handler[-1]["function"] == "evtchn_interrupt"


def test_seed002_inversion_two_chains_two_files() -> None:
    doc = check_json(*_buggy("seed002_lock_inversion"))
    f = _one(doc, "lock-order-inversion")
    assert (Path(f["file"]).name, f["line"]) == ("vgic.c", 10)
    assert sorted(f["locks"]) == ["vcpu::arch.vgic.lock", "vgic_irq_rank::lock"]
    first, second = f["traces"]
    assert [s["function"] for s in first] == [
        "gic_clear_lrs", "gic_clear_lrs", "gic_update_one_lr", "vgic_get_target_vcpu"]
    assert (Path(first[0]["file"]).name, Path(first[-1]["file"]).name) == ("gic.c", "vgic.c")
    assert [s["function"] for s in second][-1] == "vgic_migrate_irq"
    assert "vgic_store_itargetsr" in f["functions"]


def test_seed003_sleep_three_calls_down() -> None:
    doc = check_json(*_buggy("seed003_sleep_devres"))
    f = _one(doc, "sleep-in-atomic")
    assert (Path(f["file"]).name, f["line"]) == ("vfio_intx.c", 35)
    chain = [s["function"] for s in f["traces"][0]]
    assert chain == ["vfio_pci_intx_mask", "vfio_pci_intx_mask", "pci_intx", "pcim_intx",
                     "get_or_create_intx_devres"]
    assert "GFP_KERNEL" in f["traces"][0][-1]["note"]
    assert f["locks"] == ["vfio_pci_core_device::irqlock"]


@pytest.mark.parametrize("rule", ["lock-order-inversion", "wait-under-lock", "irq-unsafe-lock"])
def test_scenario_in_text(rule: str) -> None:
    from conftest import run_cli

    case = {"lock-order-inversion": "seed002_lock_inversion",
            "wait-under-lock": "seed001_wait_under_lock",
            "irq-unsafe-lock": "irq_unsafe_lock"}[rule]
    r = run_cli("check", *map(str, _buggy(case)), "--no-cache", "--enable", rule)
    assert r.returncode == 1
    assert "*** DEADLOCK ***" in r.stdout
    assert "CPU0" in r.stdout


def test_fixture_shapes_flagged_exactly_where_marked() -> None:
    root = FIXTURES / "program"
    doc = check_json(root, extra=all_rules_enabled())
    want = {(r, str(Path(p).resolve()), ln) for r, p, ln in expected_markers(root)}
    assert found(doc) == want


def test_function_pointer_chain_named() -> None:
    doc = check_json(FIXTURES / "program" / "ops.c")
    f = next(x for x in doc["findings"] if x["line"] == 47)
    assert f["rule"] == "sleep-in-atomic"
    assert "demo_prepare_slow" in f["functions"]
    assert "demo_poke_fast" not in f["functions"]


def test_rules_can_be_disabled_one_by_one() -> None:
    root = FIXTURES / "program"
    doc = check_json(root, extra=("--disable", "sleep-in-atomic"))
    assert {f["rule"] for f in doc["findings"]} == {"wait-under-lock", "lock-order-inversion"}


def test_irqs_off_assertion_is_what_keeps_it_silent(tmp_path: Path) -> None:
    src = (FIXTURES / "program" / "handover.c").read_text()
    line = next(i for i, t in enumerate(src.splitlines(), 1) if "lockdep_assert_irqs_disabled" in t)
    (tmp_path / "handover.c").write_text(src.replace("\tlockdep_assert_irqs_disabled();\n", ""))
    doc = check_json(tmp_path, extra=all_rules_enabled())
    assert [(f["rule"], f["line"], f["function"]) for f in doc["findings"]] == [
        ("irq-unsafe-lock", line, "hub_poll_locked")]


def test_sleep_below_a_dropped_lock_is_silent_but_not_when_kept(tmp_path: Path) -> None:
    src = (FIXTURES / "program" / "handover.c").read_text()
    kept = src.replace("\traw_spin_unlock_irq(&cfg_lock);\n\twait_event", "\twait_event")
    kept = kept.replace("\traw_spin_lock_irq(&cfg_lock);\n}", "}", 1)
    (tmp_path / "handover.c").write_text(kept)
    doc = check_json(tmp_path)
    hits = [(f["rule"], f["function"]) for f in doc["findings"]]
    assert ("sleep-in-atomic", "hub_read_cfg") in hits


def test_a_driver_call_resolves_to_the_generic_body_not_an_arch_override(tmp_path: Path) -> None:
    """A name defined in init/ and overridden in arch/s390/: a driver's call means the generic
    body (which does not sleep), not one architecture's (which does)."""
    (tmp_path / "init").mkdir()
    (tmp_path / "arch" / "s390" / "kernel").mkdir(parents=True)
    (tmp_path / "drivers" / "cpufreq").mkdir(parents=True)
    (tmp_path / "init" / "calibrate.c").write_text(
        "unsigned long lpj;\nvoid calibrate_delay(void)\n{\n\tlpj = 1;\n}\n")
    (tmp_path / "arch" / "s390" / "kernel" / "sysinfo.c").write_text(
        "void calibrate_delay(void)\n{\n\tmsleep(10);\n}\n")
    drv = tmp_path / "drivers" / "cpufreq" / "speed.c"
    drv.write_text("static DEFINE_SPINLOCK(speed_lock);\n"
                   "void set_speed(void)\n{\n\tspin_lock(&speed_lock);\n"
                   "\tcalibrate_delay();\n\tspin_unlock(&speed_lock);\n}\n")
    assert check_json(tmp_path)["findings"] == []
    (tmp_path / "init" / "calibrate.c").unlink()  # only the override left: it is the body
    doc = check_json(tmp_path)
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("sleep-in-atomic", 5)]


_RINGS = """#include <linux/spinlock.h>
struct ring { spinlock_t lock; int head; };
struct hub { spinlock_t lock; struct ring rx, tx; };
static struct lock_class_key ring_keys[2];

void hub_init(struct hub *h)
{
	spin_lock_init(&h->rx.lock);
	spin_lock_init(&h->tx.lock);
	KEYS
}

void hub_rx(struct hub *h, struct ring *r)
{
	spin_lock(&h->lock);
	spin_lock(&r->lock);
	r->head++;
	spin_unlock(&r->lock);
	spin_unlock(&h->lock);
}

void ring_tx(struct hub *h, struct ring *r)
{
	spin_lock(&r->lock);
	spin_lock(&h->lock);
	r->head--;
	spin_unlock(&h->lock);
	spin_unlock(&r->lock);
}
"""


def test_a_lock_class_with_lockdep_keys_of_its_own_is_not_one_lock(tmp_path: Path) -> None:
    """ring::lock ordered both ways against hub::lock is an inversion, unless the tree gives
    ring locks per-instance lockdep keys: then which ring is which is not in the classes."""
    (tmp_path / "hub.c").write_text(_RINGS.replace("KEYS", ""))
    doc = check_json(tmp_path)
    assert [(f["rule"], sorted(f["locks"])) for f in doc["findings"]] == [
        ("lock-order-inversion", ["hub::lock", "ring::lock"])]
    (tmp_path / "hub.c").write_text(_RINGS.replace(
        "KEYS", "lockdep_set_class(&h->rx.lock, &ring_keys[0]);"))
    assert check_json(tmp_path)["findings"] == []


def test_wait_matched_by_type_and_traced_to_its_own_call() -> None:
    """The controller's `reset_work` is not the device's; of a callee's two cancels, the
    trace shows the one that waits for the lock's taker."""
    doc = check_json(FIXTURES / "program" / "work_types.c")
    hits = {f["line"]: f for f in doc["findings"] if f["rule"] == "wait-under-lock"}
    assert sorted(hits) == [48, 61, 91]
    waits = [s for s in hits[61]["traces"][0] if s["note"].endswith("waits")]
    assert [(s["line"], s["note"]) for s in waits] == [
        (55, "cancel_work_sync(&g->reset_work) waits")]


def test_a_lock_taken_again_orders_nothing(tmp_path: Path) -> None:
    """retake.c: the callee's host lock is the one held outside the queue lock; without the
    outer one it is an order after the queue lock, and the cycle with reenable() is real."""
    assert check_json(FIXTURES / "program" / "retake.c")["findings"] == []
    src = (FIXTURES / "program" / "retake.c").read_text()
    old = "\tspin_lock(&q->host->host_lock);\n\tspin_lock(&q->q_lock);\n\tlocked_done(q);"
    assert src.count(old) == 1
    new = "\tspin_lock(&q->q_lock);\n\tlocked_done(q);"
    (tmp_path / "retake.c").write_text(src.replace(old, new))
    doc = check_json(tmp_path)
    assert [(f["rule"], f["line"]) for f in doc["findings"]
            if f["rule"] == "lock-order-inversion"] == [("lock-order-inversion", 36)]


def test_ops_of_a_struct_two_drivers_define_stay_in_the_driver(tmp_path: Path) -> None:
    """twins/: vfdrv and pfdrv each define `struct mac_hw` and its ops; vfdrv's call through
    its ops under its spinlock reaches its own busy-wait, not pfdrv's msleep(). Without
    vfdrv's own definition, the one struct's field holds pfdrv's function."""
    root = FIXTURES / "program" / "twins"
    assert check_json(root)["findings"] == []
    import shutil

    shutil.copytree(root, tmp_path / "twins")
    (tmp_path / "twins" / "vfdrv" / "hw.h").unlink()
    doc = check_json(tmp_path / "twins")
    assert [(f["rule"], Path(f["file"]).name, f["line"]) for f in doc["findings"]] == [
        ("sleep-in-atomic", "netdev.c", 19)]
    assert [s["function"] for s in doc["findings"][0]["traces"][0]][-1] == \
        "pf_check_for_copper_link"


def test_a_lock_a_callee_of_another_file_lets_go_of_is_not_held_after(tmp_path: Path) -> None:
    """tail_*.c: tail_create() unlocks the name lock its caller took (drm's
    drm_gem_handle_create_tail()); the failure path after it takes the prime lock without
    the name lock.  A helper that keeps the lock makes the order, and the cycle, real."""
    import shutil

    root = FIXTURES / "program"
    names = ("tail.h", "tail_helper.c", "tail_user.c")
    assert check_json(*(root / n for n in names))["findings"] == []
    for n in names:
        shutil.copy(root / n, tmp_path / n)
    helper = tmp_path / "tail_helper.c"
    src = helper.read_text()
    assert src.count("\tmutex_unlock(&dev->name_lock);\n") == 1
    helper.write_text(src.replace("\tmutex_unlock(&dev->name_lock);\n", ""))
    doc = check_json(tmp_path)
    assert [(f["rule"], Path(f["file"]).name, f["line"]) for f in doc["findings"]
            if f["rule"] == "lock-order-inversion"] == [
        ("lock-order-inversion", "tail_helper.c", 16)]


def test_both_orders_inside_one_outer_lock_are_no_cycle(tmp_path: Path) -> None:
    """gate.c: conf then state (through a callee), state then conf, each only with the adm
    mutex held.  Without it around one of them the cycle is there."""
    assert check_json(FIXTURES / "program" / "gate.c")["findings"] == []
    src = (FIXTURES / "program" / "gate.c").read_text()
    old = "\tmutex_lock(&gate_adm_mutex);\n\tmutex_lock(&r->state);"
    assert src.count(old) == 1
    (tmp_path / "gate.c").write_text(src.replace(old, "\tmutex_lock(&r->state);"))
    doc = check_json(tmp_path)
    assert [(f["rule"], f["function"]) for f in doc["findings"]
            if f["rule"] == "lock-order-inversion"] == [("lock-order-inversion", "gate_set_state")]


def test_one_finding_per_call_that_waits_for_two_handlers(tmp_path: Path) -> None:
    """ldc_disconnect()'s shape: the callee frees both of the channel's interrupts, whose
    handlers both take the lock the caller holds: one deadlock at the call, reported once."""
    (tmp_path / "chan.c").write_text("""\
#include <linux/interrupt.h>
#include <linux/spinlock.h>

struct chan {
	spinlock_t lock;
	unsigned int rx_irq, tx_irq;
	int state;
};

static irqreturn_t chan_rx(int irq, void *data)
{
	struct chan *c = data;
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	c->state = 1;
	spin_unlock_irqrestore(&c->lock, flags);
	return IRQ_HANDLED;
}

static irqreturn_t chan_tx(int irq, void *data)
{
	struct chan *c = data;
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	c->state = 2;
	spin_unlock_irqrestore(&c->lock, flags);
	return IRQ_HANDLED;
}

int chan_bind(struct chan *c)
{
	if (request_irq(c->rx_irq, chan_rx, 0, "rx", c))
		return -1;
	return request_irq(c->tx_irq, chan_tx, 0, "tx", c);
}

static void chan_unbind(struct chan *c)
{
	free_irq(c->tx_irq, c);
	free_irq(c->rx_irq, c);
}

void chan_disconnect(struct chan *c)
{
	unsigned long flags;

	spin_lock_irqsave(&c->lock, flags);
	chan_unbind(c);
	spin_unlock_irqrestore(&c->lock, flags);
}
""")
    doc = check_json(tmp_path)
    assert [(f["rule"], f["line"]) for f in doc["findings"] if f["rule"] == "wait-under-lock"] \
        == [("wait-under-lock", 50)]


def test_an_outer_lock_the_callers_hold_is_a_gate_too(tmp_path: Path) -> None:
    """gate.c with the adm mutex taken by the callers of both orders instead: still one at a
    time; a caller without it opens the cycle."""
    src = (FIXTURES / "program" / "gate.c").read_text()
    src = src.replace("\tmutex_lock(&gate_adm_mutex);\n", "").replace(
        "\tmutex_unlock(&gate_adm_mutex);\n", "")
    src += """
void gate_cmd_adjust(struct gate_res *r)
{
	mutex_lock(&gate_adm_mutex);
	gate_adjust(r);
	mutex_unlock(&gate_adm_mutex);
}

void gate_cmd_down(struct gate_res *r)
{
	mutex_lock(&gate_adm_mutex);
	gate_down(r);
	mutex_unlock(&gate_adm_mutex);
}
"""
    (tmp_path / "gate.c").write_text(src)
    assert check_json(tmp_path)["findings"] == []
    (tmp_path / "gate.c").write_text(src + """
void gate_cmd_down_raw(struct gate_res *r)
{
	gate_down(r);
}
""")
    doc = check_json(tmp_path)
    assert [f["rule"] for f in doc["findings"]] == ["lock-order-inversion"]


def test_a_work_that_cancels_itself_says_so(tmp_path: Path) -> None:
    """cw1200's scan timeout: the work takes the mutex and, on an error, cancels itself."""
    (tmp_path / "scan.c").write_text("""\
#include <linux/mutex.h>
#include <linux/workqueue.h>

struct scan_dev {
	struct mutex conf;
	struct work_struct timeout;
	int err;
};

static void scan_abort(struct scan_dev *d)
{
	cancel_work_sync(&d->timeout);
}

static void scan_timeout(struct work_struct *w)
{
	struct scan_dev *d = container_of(w, struct scan_dev, timeout);

	mutex_lock(&d->conf);
	if (d->err)
		scan_abort(d);
	mutex_unlock(&d->conf);
}

void scan_init(struct scan_dev *d)
{
	INIT_WORK(&d->timeout, scan_timeout);
}
""")
    doc = check_json(tmp_path)
    got = [(f["rule"], f["line"], f["function"]) for f in doc["findings"]]
    assert got == [("wait-under-lock", 21, "scan_timeout")]
    assert doc["findings"][0]["message"].endswith(
        "; the wait is made inside scan_timeout() itself, which would wait for itself")


def test_a_last_put_release_orders_no_lock_but_still_sleeps(tmp_path: Path) -> None:
    """lastput.c: the session's release (on its last reference, `if (dec_and_test)` and
    `if (!dec_and_test) return;`) takes the global lock; a caller holding the session's
    lock holds a reference: no cycle.  Its sleep under a spinlock is still reported.  A put
    that frees without the test makes the cycle real."""
    src = (FIXTURES / "program" / "lastput.c").read_text()
    doc = check_json(FIXTURES / "program" / "lastput.c")
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [("sleep-in-atomic", 65)]
    for old, new in (("\tif (refcount_dec_and_test(&s->refcount))\n\t\tlp_free_sess(s);",
                      "\tlp_free_sess(s);"),
                     ("\tif (!refcount_dec_and_test(&d->refcount))\n\t\treturn;\n", "")):
        assert src.count(old) == 1
        src = src.replace(old, new)
    (tmp_path / "lastput.c").write_text(src)
    doc = check_json(tmp_path)
    assert sorted(f["rule"] for f in doc["findings"]) == [
        "lock-order-inversion", "sleep-in-atomic"]


def test_work_items_of_one_ordered_queue_do_not_wait_for_each_other(tmp_path: Path) -> None:
    """ordered_wq.c: the event work cancels the status work under a lock the status work
    takes, both queued only on the device's ordered workqueue: silent.  The status work
    on another queue, a queue that is not ordered, or the cancelling function called from
    outside the queue's work items, and the wait is a deadlock again."""
    src = (FIXTURES / "program" / "ordered_wq.c").read_text()

    def waits(text: str) -> list[int]:
        (tmp_path / "ordered_wq.c").write_text(text)
        return sorted(f["line"] for f in check_json(tmp_path)["findings"]
                      if f["rule"] == "wait-under-lock")

    assert waits(src) == [58]
    for old, new in (
            ("queue_delayed_work(d->wq, &d->status_work, 10);",
             "schedule_delayed_work(&d->status_work, 10);"),
            ('alloc_ordered_workqueue("owq", 0);', 'alloc_workqueue("owq", 0, 0);'),
            ("\tcancel_delayed_work_sync(&d->status_work); /* expect: wait-under-lock */",
             "\towq_handle(d); /* expect: wait-under-lock */"),
            # the status work runs the handler itself: it would wait for itself
            ("\td->state = 0;\n\tmutex_unlock", "\towq_handle(d);\n\tmutex_unlock"),
            # a helper may queue a `work` of this directory on another queue
            ("queue_work(d->wq, work);", "schedule_work(work);")):
        assert src.count(old) == 1, old
        assert 29 in waits(src.replace(old, new)), old
