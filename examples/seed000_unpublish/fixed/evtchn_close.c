/* seed000: event channel closed before its evtchn_to_irq mapping is cleared (free before unpublish). */
#include <linux/spinlock.h>

#define NR_EVTCHN		1024
#define EVTCHNOP_bind_pirq	2
#define EVTCHNOP_close		3

typedef unsigned int evtchn_port_t;

struct irq_data { unsigned int irq; };
struct irq_chip {
	const char *name;
	unsigned int (*irq_startup)(struct irq_data *data);
	void (*irq_shutdown)(struct irq_data *data);
};
struct irq_info { unsigned int pirq; evtchn_port_t evtchn; };
struct evtchn_close { evtchn_port_t port; };
struct evtchn_bind_pirq { unsigned int pirq; evtchn_port_t port; };

int HYPERVISOR_event_channel_op(int cmd, void *arg);
struct irq_info *info_for_irq(unsigned int irq);
void mask_evtchn(evtchn_port_t evtchn);

static DEFINE_MUTEX(irq_mapping_update_lock);
static int evtchn_to_irq[NR_EVTCHN];

static void set_evtchn_to_irq(evtchn_port_t evtchn, int irq)
{
	evtchn_to_irq[evtchn] = irq;
}

static void xen_evtchn_close(evtchn_port_t port)
{
	struct evtchn_close close = { .port = port };

	HYPERVISOR_event_channel_op(EVTCHNOP_close, &close);
}

static void xen_irq_info_cleanup(struct irq_info *info)
{
	set_evtchn_to_irq(info->evtchn, -1);
	info->evtchn = 0;
}

/* irq_chip methods run under irq_desc->lock: they cannot take irq_mapping_update_lock. */
static unsigned int startup_pirq(struct irq_data *data)
{
	struct irq_info *info = info_for_irq(data->irq);
	struct evtchn_bind_pirq bind_pirq = { .pirq = info->pirq };

	if (HYPERVISOR_event_channel_op(EVTCHNOP_bind_pirq, &bind_pirq) != 0)
		return 0;
	info->evtchn = bind_pirq.port;
	set_evtchn_to_irq(bind_pirq.port, data->irq);
	return 0;
}

static void shutdown_pirq(struct irq_data *data)
{
	struct irq_info *info = info_for_irq(data->irq);
	evtchn_port_t evtchn = info->evtchn;

	if (!evtchn)
		return;
	mask_evtchn(evtchn);
	xen_irq_info_cleanup(info);
	xen_evtchn_close(evtchn);
}

static struct irq_chip xen_pirq_chip = {
	.name		= "xen-pirq",
	.irq_startup	= startup_pirq,
	.irq_shutdown	= shutdown_pirq,
};

void unbind_from_irq(unsigned int irq)
{
	struct irq_info *info;

	mutex_lock(&irq_mapping_update_lock);
	info = info_for_irq(irq);
	if (info->evtchn) {
		evtchn_port_t evtchn = info->evtchn;

		xen_irq_info_cleanup(info);
		xen_evtchn_close(evtchn);
	}
	mutex_unlock(&irq_mapping_update_lock);
}
