/* seed002: the rank lock is held while vgic_migrate_irq takes the vgic lock (second half of the AB-BA). */
#include "vgic.h"

struct vcpu *vgic_get_target_vcpu(struct vcpu *v, unsigned int irq)
{
    struct vgic_irq_rank *rank = vgic_rank_irq(v, irq);
    struct vcpu *target;
    unsigned long flags;

    vgic_lock_rank(v, rank, flags); /* expect: lock-order-inversion */
    target = v->domain->vcpu[rank->vcpu[irq & 31]];
    vgic_unlock_rank(v, rank, flags);

    return target;
}

void vgic_migrate_irq(struct vcpu *old, struct vcpu *new, unsigned int irq)
{
    struct pending_irq *p = irq_to_pending(old, irq);
    unsigned long flags;

    if ( p->desc == NULL )
        return;

    /* migration already in progress, no need to do anything */
    if ( test_bit(GIC_IRQ_GUEST_MIGRATING, &p->status) )
        return;

    spin_lock_irqsave(&old->arch.vgic.lock, flags);

    if ( list_empty(&p->inflight) )
    {
        irq_set_affinity(p->desc, cpumask_of(new->processor));
        spin_unlock_irqrestore(&old->arch.vgic.lock, flags);
        return;
    }

    set_bit(GIC_IRQ_GUEST_MIGRATING, &p->status);
    spin_unlock_irqrestore(&old->arch.vgic.lock, flags);
}

void vgic_store_itargetsr(struct domain *d, struct vgic_irq_rank *rank,
                          unsigned int irq, unsigned int new_target)
{
    struct vcpu *old, *new;
    unsigned long flags;

    vgic_lock_rank(d->vcpu[0], rank, flags);

    old = d->vcpu[rank->vcpu[irq & 31]];
    new = d->vcpu[new_target];
    if ( new != old )
        vgic_migrate_irq(old, new, irq);
    rank->vcpu[irq & 31] = new_target;

    vgic_unlock_rank(d->vcpu[0], rank, flags);
}
