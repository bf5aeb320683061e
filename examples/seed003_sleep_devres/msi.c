/* seed003: the MSI devres release action reaches pci_intx() and so creates a new devres on detach. */
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

bool pci_is_managed(struct pci_dev *pdev);
void pci_intx(struct pci_dev *pdev, int enable);
void pci_msi_mask_all(struct pci_dev *dev);
int devm_add_action(struct device *dev, void (*action)(void *), void *data);

static void pci_msi_shutdown(struct pci_dev *dev)
{
	pci_msi_mask_all(dev);
	dev->msi_enabled = 0;
	pci_intx(dev, 1);	/* restore INTx that MSI setup disabled */
}

void pci_disable_msi(struct pci_dev *dev)
{
	if (!dev->msi_enabled)
		return;
	pci_msi_shutdown(dev);
}

void pci_free_irq_vectors(struct pci_dev *dev)
{
	pci_disable_msi(dev);
}

static void pcim_msi_release(void *pcidev)
{
	struct pci_dev *dev = pcidev;

	dev->is_msi_managed = false;
	pci_free_irq_vectors(dev);
}

static int pcim_setup_msi_release(struct pci_dev *dev)
{
	int ret;

	if (!pci_is_managed(dev) || dev->is_msi_managed)
		return 0;

	ret = devm_add_action(&dev->dev, pcim_msi_release, dev);
	if (ret)
		return ret;
	dev->is_msi_managed = true;
	return 0;
}

int pci_enable_msi(struct pci_dev *dev)
{
	int ret;

	ret = pcim_setup_msi_release(dev);
	if (ret)
		return ret;
	pci_intx(dev, 0);
	dev->msi_enabled = 1;
	return 0;
}
