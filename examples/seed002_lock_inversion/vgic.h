/* seed002: shared declarations and the rank-lock wrapper macros for the gic.c / vgic.c lock inversion. */
#ifndef __EXAMPLE_VGIC_H__
#define __EXAMPLE_VGIC_H__

#include <xen/spinlock.h>

#define GIC_IRQ_GUEST_ENABLED   1
#define GIC_IRQ_GUEST_MIGRATING 4

struct list_head { struct list_head *next, *prev; };
struct irq_desc;
struct domain;

struct pending_irq {
    unsigned long status;
    struct irq_desc *desc;
    unsigned int priority;
    struct list_head inflight;
};

struct vgic_irq_rank {
    spinlock_t lock;
    uint8_t vcpu[32];
};

struct vgic_cpu {
    spinlock_t lock;
};

struct arch_vcpu {
    struct vgic_cpu vgic;
};

struct vcpu {
    unsigned int processor;
    struct domain *domain;
    struct arch_vcpu arch;
};

struct domain {
    struct vcpu **vcpu;
};

#define vgic_lock_rank(v, r, flags)   spin_lock_irqsave(&(r)->lock, flags)
#define vgic_unlock_rank(v, r, flags) spin_unlock_irqrestore(&(r)->lock, flags)

struct vgic_irq_rank *vgic_rank_irq(struct vcpu *v, unsigned int irq);
struct pending_irq *irq_to_pending(struct vcpu *v, unsigned int irq);
struct vcpu *vgic_get_target_vcpu(struct vcpu *v, unsigned int irq);
void vgic_migrate_irq(struct vcpu *old, struct vcpu *new, unsigned int irq);

#endif /* __EXAMPLE_VGIC_H__ */
