/* Fixed: the irq_chip startup and shutdown methods no longer touch the mapping; the pirq's
 * channel is bound and mapped in bind_pirq_to_irq() and unmapped in unbind_from_irq(), both
 * under irq_mapping_update_lock, before the IRQ core can start or after it has shut down. */
#include <linux/mutex.h>

#define NR_EVTCHN	1024

typedef unsigned int evtchn_port_t;

struct irq_data { unsigned int irq; };
struct irq_chip {
	const char *name;
	unsigned int (*irq_startup)(struct irq_data *data);
	void (*irq_shutdown)(struct irq_data *data);
};
struct irq_info { unsigned int pirq; evtchn_port_t evtchn; };

struct irq_info *info_for_irq(unsigned int irq);
evtchn_port_t hyp_bind_pirq(unsigned int pirq);
void hyp_unmask(evtchn_port_t port);

static DEFINE_MUTEX(irq_mapping_update_lock);
static int evtchn_to_irq[NR_EVTCHN];

static void set_evtchn_to_irq(evtchn_port_t evtchn, int irq)
{
	evtchn_to_irq[evtchn] = irq;
}

static void xen_irq_info_cleanup(struct irq_info *info)
{
	set_evtchn_to_irq(info->evtchn, -1);
	info->evtchn = 0;
}

int bind_evtchn_to_irq(evtchn_port_t evtchn, unsigned int irq)
{
	mutex_lock(&irq_mapping_update_lock);
	set_evtchn_to_irq(evtchn, irq);
	mutex_unlock(&irq_mapping_update_lock);
	return irq;
}

int bind_virq_to_irq(evtchn_port_t evtchn, unsigned int irq)
{
	mutex_lock(&irq_mapping_update_lock);
	set_evtchn_to_irq(evtchn, irq);
	mutex_unlock(&irq_mapping_update_lock);
	return irq;
}

int bind_ipi_to_irq(evtchn_port_t evtchn, unsigned int irq)
{
	mutex_lock(&irq_mapping_update_lock);
	set_evtchn_to_irq(evtchn, irq);
	mutex_unlock(&irq_mapping_update_lock);
	return irq;
}

int bind_interdomain_evtchn_to_irq(evtchn_port_t evtchn, unsigned int irq)
{
	mutex_lock(&irq_mapping_update_lock);
	set_evtchn_to_irq(evtchn, irq);
	mutex_unlock(&irq_mapping_update_lock);
	return irq;
}

void rebind_evtchn_irq(evtchn_port_t evtchn, unsigned int irq)
{
	mutex_lock(&irq_mapping_update_lock);
	set_evtchn_to_irq(evtchn, irq);
	mutex_unlock(&irq_mapping_update_lock);
}

void unbind_from_irq(unsigned int irq)
{
	struct irq_info *info;

	mutex_lock(&irq_mapping_update_lock);
	info = info_for_irq(irq);
	if (info->evtchn)
		xen_irq_info_cleanup(info);
	mutex_unlock(&irq_mapping_update_lock);
}

int bind_pirq_to_irq(unsigned int irq)
{
	struct irq_info *info;
	evtchn_port_t port;

	mutex_lock(&irq_mapping_update_lock);
	info = info_for_irq(irq);
	port = hyp_bind_pirq(info->pirq);
	if (port) {
		info->evtchn = port;
		set_evtchn_to_irq(port, irq);
	}
	mutex_unlock(&irq_mapping_update_lock);
	return port ? 0 : -1;
}

static unsigned int startup_pirq(struct irq_data *data)
{
	struct irq_info *info = info_for_irq(data->irq);

	if (info->evtchn)
		hyp_unmask(info->evtchn);
	return 0;
}

static void shutdown_pirq(struct irq_data *data)
{
	struct irq_info *info = info_for_irq(data->irq);

	(void)info;
}

static struct irq_chip xen_pirq_chip = {
	.name		= "xen-pirq",
	.irq_startup	= startup_pirq,
	.irq_shutdown	= shutdown_pirq,
};
