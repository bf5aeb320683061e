/* seed002: gic_update_one_lr runs under the vgic lock and reaches the rank lock (first half of an AB-BA). */
#include "vgic.h"

static unsigned long lr_mask;
static unsigned int nr_lrs;

unsigned int gic_read_lr_irq(int i);
void gic_clear_lr(int i);
void gic_raise_guest_irq(struct vcpu *v, unsigned int irq, unsigned int priority);

/* Called with v->arch.vgic.lock held. */
static void gic_update_one_lr(struct vcpu *v, int i)
{
    unsigned int irq = gic_read_lr_irq(i);
    struct pending_irq *p = irq_to_pending(v, irq);

    gic_clear_lr(i);
    clear_bit(i, &lr_mask);

    if ( test_bit(GIC_IRQ_GUEST_ENABLED, &p->status) )
        gic_raise_guest_irq(v, irq, p->priority);
    else
    {
        list_del_init(&p->inflight);
        /* affinity is now set by vgic_migrate_irq: no rank lock here */
        clear_bit(GIC_IRQ_GUEST_MIGRATING, &p->status);
    }
}

void gic_clear_lrs(struct vcpu *v)
{
    unsigned long flags;
    unsigned int i;

    spin_lock_irqsave(&v->arch.vgic.lock, flags);

    for ( i = 0; i < nr_lrs; i++ )
        if ( test_bit(i, &lr_mask) )
            gic_update_one_lr(v, i);

    spin_unlock_irqrestore(&v->arch.vgic.lock, flags);
}
