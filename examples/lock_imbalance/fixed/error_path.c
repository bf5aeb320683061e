/* lock_imbalance (fixed): the same error paths with every lock balanced, next to the same correct idioms. */
#include <linux/spinlock.h>

#define FOO_LOCKED	0x1

struct foo {
	spinlock_t lock;
	struct mutex mutex;
	int mode, pending, count;
	unsigned int config;
	void *buf;
};

static int foo_set_mode(struct foo *f, int mode)
{
	if (mode < 0)
		return -EINVAL;
	spin_lock(&f->lock);
	f->mode = mode;
	spin_unlock(&f->lock);
	return 0;
}

static int foo_alloc_buf(struct foo *f, size_t len)
{
	int ret = 0;

	mutex_lock(&f->mutex);
	if (f->buf) {
		ret = -EBUSY;
		goto out_unlock;
	}
	f->buf = kmalloc(len, GFP_KERNEL);
	if (!f->buf) {
		ret = -ENOMEM;
		goto out_unlock;
	}
out_unlock:
	mutex_unlock(&f->mutex);
	return ret;
}

static void foo_reset_count(struct foo *f)
{
	spin_lock(&f->lock);
	f->count = 0;
	f->pending = 0;
	spin_unlock(&f->lock);
}

static int foo_flush(struct foo *f)
{
	int ret = 0;

	spin_lock(&f->lock);
	if (!f->pending) {
		ret = -EAGAIN;
		goto out_unlock;
	}
	f->pending = 0;
out_unlock:
	spin_unlock(&f->lock);
	return ret;
}

/* Correct idioms below: these must stay silent. */
static int foo_read_config(struct foo *f, unsigned int *val)
{
	if (mutex_lock_interruptible(&f->mutex))
		return -EINTR;
	*val = f->config;
	mutex_unlock(&f->mutex);
	return 0;
}

static bool foo_try_kick(struct foo *f)
{
	if (!spin_trylock(&f->lock))
		return false;
	f->pending++;
	spin_unlock(&f->lock);
	return true;
}

static void foo_count(struct foo *f, unsigned int flags)
{
	if (flags & FOO_LOCKED)
		spin_lock(&f->lock);
	f->count++;
	if (flags & FOO_LOCKED)
		spin_unlock(&f->lock);
}

/* Lock helpers: return holding / release a lock they do not balance. */
void foo_lock(struct foo *f)
{
	spin_lock(&f->lock);
}

void foo_unlock(struct foo *f)
{
	spin_unlock(&f->lock);
}
