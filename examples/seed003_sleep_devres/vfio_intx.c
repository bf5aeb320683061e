/* seed003: vfio masks INTx with pci_intx() under a spinlock; pci_intx() may sleep three calls down. */
#include <linux/spinlock.h>

#define PCI_COMMAND			0x04
#define PCI_COMMAND_INTX_DISABLE	0x400

struct device { void *driver_data; };
struct pci_dev {
	struct device dev;
	unsigned int irq;
	unsigned int is_managed:1;
	unsigned int is_msi_managed:1;
	unsigned int msi_enabled:1;
};

struct vfio_pci_core_device {
	struct pci_dev *pdev;
	spinlock_t irqlock;
	bool pci_2_3;
	bool masked;
};

void pci_intx(struct pci_dev *pdev, int enable);
void disable_irq_nosync(unsigned int irq);

static bool vfio_pci_intx_mask(struct vfio_pci_core_device *vdev)
{
	struct pci_dev *pdev = vdev->pdev;
	unsigned long flags;
	bool masked_changed = false;

	spin_lock_irqsave(&vdev->irqlock, flags);
	if (!vdev->masked) {
		if (vdev->pci_2_3)
			pci_intx(pdev, 0); /* expect: sleep-in-atomic */
		else
			disable_irq_nosync(pdev->irq);
		vdev->masked = true;
		masked_changed = true;
	}
	spin_unlock_irqrestore(&vdev->irqlock, flags);

	return masked_changed;
}

int vfio_pci_ioctl_mask_intx(struct vfio_pci_core_device *vdev)
{
	return vfio_pci_intx_mask(vdev) ? 0 : -EBUSY;
}
