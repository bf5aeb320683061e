/* irq-unsafe-lock, fixed: the RX handler takes port->lock in hardirq context; the ioctl path disables IRQs around it. */
#include <linux/spinlock.h>

typedef int irqreturn_t;
#define IRQ_HANDLED 1

struct demo_port {
	spinlock_t lock;
	unsigned int irq;
	unsigned int rx_count;
	unsigned int baud;
};

int request_irq(unsigned int irq, irqreturn_t (*handler)(int, void *), unsigned long flags,
		const char *name, void *dev);

static void demo_rx_account(struct demo_port *port)
{
	spin_lock(&port->lock);
	port->rx_count++;
	spin_unlock(&port->lock);
}

static irqreturn_t demo_interrupt(int irq, void *dev_id)
{
	struct demo_port *port = dev_id;

	demo_rx_account(port);
	return IRQ_HANDLED;
}

int demo_set_baud(struct demo_port *port, unsigned int baud)
{
	unsigned long flags;

	spin_lock_irqsave(&port->lock, flags);
	port->baud = baud;
	spin_unlock_irqrestore(&port->lock, flags);
	return 0;
}

int demo_startup(struct demo_port *port)
{
	return request_irq(port->irq, demo_interrupt, 0, "demo", port);
}
