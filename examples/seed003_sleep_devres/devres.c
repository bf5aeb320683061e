/* seed003: pcim_intx() allocates a devres with GFP_KERNEL (may sleep) and registers it on the device. */
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

struct pcim_intx_devres {
	int orig_intx;
};

void pci_read_config_word(struct pci_dev *pdev, int where, u16 *val);
void pci_write_config_word(struct pci_dev *pdev, int where, u16 val);

static void __pcim_intx(struct pci_dev *pdev, int enable)
{
	u16 pci_command, new;

	pci_read_config_word(pdev, PCI_COMMAND, &pci_command);
	if (enable)
		new = pci_command & ~PCI_COMMAND_INTX_DISABLE;
	else
		new = pci_command | PCI_COMMAND_INTX_DISABLE;
	if (new != pci_command)
		pci_write_config_word(pdev, PCI_COMMAND, new);
}

static void pcim_intx_restore(struct device *dev, void *data)
{
	struct pci_dev *pdev = to_pci_dev(dev);
	struct pcim_intx_devres *res = data;

	__pcim_intx(pdev, res->orig_intx);
}

static struct pcim_intx_devres *get_or_create_intx_devres(struct device *dev)
{
	struct pcim_intx_devres *res;

	res = devres_find(dev, pcim_intx_restore, NULL, NULL);
	if (res)
		return res;

	res = devres_alloc(pcim_intx_restore, sizeof(*res), GFP_KERNEL);
	if (res)
		devres_add(dev, res); /* expect: devres-on-detach */
	return res;
}

int pcim_intx(struct pci_dev *pdev, int enable)
{
	struct pcim_intx_devres *res;

	res = get_or_create_intx_devres(&pdev->dev);
	if (!res)
		return -ENOMEM;

	res->orig_intx = !enable;
	__pcim_intx(pdev, enable);
	return 0;
}
