/* seed001: disable_irq() called with port_user_lock held while the IRQ handler spins on that lock. */
#include <linux/spinlock.h>

#define NR_EVENT_CHANNELS	1024
#define EVTCHN_RING_MASK	63
#define IRQ_HANDLED		1

typedef int irqreturn_t;
typedef unsigned int evtchn_port_t;

struct per_user_data {
	const char *name;
	unsigned int ring_prod;
	wait_queue_head_t evtchn_wait;
	evtchn_port_t ring[EVTCHN_RING_MASK + 1];
};

int bind_evtchn_to_irqhandler(evtchn_port_t port,
			      irqreturn_t (*handler)(int irq, void *dev_id),
			      unsigned long irqflags, const char *name, void *dev_id);
void unbind_from_irqhandler(unsigned int irq, void *dev_id);
int irq_from_evtchn(evtchn_port_t port);
evtchn_port_t evtchn_from_irq(unsigned int irq);
void disable_irq(unsigned int irq);

static DEFINE_SPINLOCK(port_user_lock);
static struct per_user_data *port_user[NR_EVENT_CHANNELS];

static irqreturn_t evtchn_interrupt(int irq, void *data)
{
	struct per_user_data *u = data;
	evtchn_port_t port = evtchn_from_irq(irq);

	spin_lock(&port_user_lock);
	if (port_user[port] == u) {
		u->ring[u->ring_prod++ & EVTCHN_RING_MASK] = port;
		wake_up_interruptible(&u->evtchn_wait);
	}
	spin_unlock(&port_user_lock);
	return IRQ_HANDLED;
}

static int evtchn_bind_to_user(struct per_user_data *u, evtchn_port_t port)
{
	spin_lock_irq(&port_user_lock);
	port_user[port] = u;
	spin_unlock_irq(&port_user_lock);

	return bind_evtchn_to_irqhandler(port, evtchn_interrupt, 0, u->name, u);
}

static void evtchn_unbind_from_user(struct per_user_data *u, evtchn_port_t port)
{
	int irq = irq_from_evtchn(port);

	spin_lock_irq(&port_user_lock);
	disable_irq(irq); /* expect: wait-under-lock, sleep-in-atomic */
	port_user[port] = NULL;
	spin_unlock_irq(&port_user_lock);

	unbind_from_irqhandler(irq, u);
}
