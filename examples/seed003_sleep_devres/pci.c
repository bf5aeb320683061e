/* seed003: pci_intx() silently redirects to the managed pcim_intx() once the device is managed. */
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

int pcim_intx(struct pci_dev *pdev, int enable);
int pci_enable_device(struct pci_dev *pdev);
void pci_read_config_word(struct pci_dev *pdev, int where, u16 *val);
void pci_write_config_word(struct pci_dev *pdev, int where, u16 val);

bool pci_is_managed(struct pci_dev *pdev)
{
	return pdev->is_managed;
}

void pci_intx(struct pci_dev *pdev, int enable)
{
	u16 pci_command, new;

	if (pci_is_managed(pdev)) {
		WARN_ON_ONCE(pcim_intx(pdev, enable) != 0);
		return;
	}

	pci_read_config_word(pdev, PCI_COMMAND, &pci_command);
	if (enable)
		new = pci_command & ~PCI_COMMAND_INTX_DISABLE;
	else
		new = pci_command | PCI_COMMAND_INTX_DISABLE;
	if (new != pci_command)
		pci_write_config_word(pdev, PCI_COMMAND, new);
}

int pcim_enable_device(struct pci_dev *pdev)
{
	int ret;

	ret = pci_enable_device(pdev);
	if (ret)
		return ret;
	/* set in probe, never reset when the driver goes away */
	pdev->is_managed = true;
	return 0;
}
