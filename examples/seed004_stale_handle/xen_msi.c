/* seed004: MSI setup re-uses the pirq cached in the MSI message although teardown unmapped (freed) it. */
#include <linux/spinlock.h>

#define XEN_PIRQ_MSI_DATA	0x4300
#define PHYSDEVOP_unmap_pirq	14
#define MSI_ADDR_DEST_ID_SHIFT	12
#define MSI_ADDR_EXT_DEST_ID(addr_hi)	((addr_hi) & 0xffffff00)

struct msi_msg { u32 address_lo; u32 address_hi; u32 data; };
struct msi_desc { unsigned int irq; };
struct pci_dev { struct msi_desc *msi_descs; int nvec; };
struct physdev_unmap_pirq { int domid; int pirq; };
struct x86_msi_ops {
	int (*setup_msi_irqs)(struct pci_dev *dev, int nvec);
	void (*teardown_msi_irqs)(struct pci_dev *dev);
};

extern struct x86_msi_ops x86_msi;

void __pci_read_msi_msg(struct msi_desc *entry, struct msi_msg *msg);
void __pci_write_msi_msg(struct msi_desc *entry, struct msi_msg *msg);
int xen_irq_from_pirq(unsigned int pirq);
int xen_pirq_from_irq(unsigned int irq);
int xen_allocate_pirq_msi(struct pci_dev *dev, struct msi_desc *msidesc);
void xen_msi_compose_msg(struct pci_dev *dev, int pirq, struct msi_msg *msg);
int xen_bind_pirq_msi_to_irq(struct pci_dev *dev, struct msi_desc *msidesc, int pirq);
int HYPERVISOR_physdev_op(int cmd, void *arg);

static int xen_hvm_setup_msi_irqs(struct pci_dev *dev, int nvec)
{
	struct msi_desc *msidesc;
	struct msi_msg msg;
	int i, irq, pirq;

	for (i = 0; i < nvec; i++) {
		msidesc = &dev->msi_descs[i];
		__pci_read_msi_msg(msidesc, &msg);
		pirq = MSI_ADDR_EXT_DEST_ID(msg.address_hi) |
		       ((msg.address_lo >> MSI_ADDR_DEST_ID_SHIFT) & 0xff);
		if (msg.data != XEN_PIRQ_MSI_DATA || xen_irq_from_pirq(pirq) < 0) {
			pirq = xen_allocate_pirq_msi(dev, msidesc);
			if (pirq < 0)
				return -ENODEV;
			xen_msi_compose_msg(dev, pirq, &msg);
			__pci_write_msi_msg(msidesc, &msg);
		}
		irq = xen_bind_pirq_msi_to_irq(dev, msidesc, pirq); /* expect: stale-handle-reuse */
		if (irq < 0)
			return irq;
	}
	return 0;
}

static void xen_destroy_irq(unsigned int irq)
{
	struct physdev_unmap_pirq unmap_irq = { .domid = 0 };

	/* the hypervisor frees the pirq; the copy in the MSI message stays */
	unmap_irq.pirq = xen_pirq_from_irq(irq);
	HYPERVISOR_physdev_op(PHYSDEVOP_unmap_pirq, &unmap_irq);
}

static void xen_teardown_msi_irqs(struct pci_dev *dev)
{
	int i;

	for (i = 0; i < dev->nvec; i++)
		if (dev->msi_descs[i].irq)
			xen_destroy_irq(dev->msi_descs[i].irq);
}

void xen_hvm_msi_init(void)
{
	x86_msi.setup_msi_irqs = xen_hvm_setup_msi_irqs;
	x86_msi.teardown_msi_irqs = xen_teardown_msi_irqs;
}
