// SPDX-License-Identifier: GPL-2.0
/*
 * kmatrix: the kernel-module half of kmatrix's comparison. It does the same
 * observable job as the CO-RE BPF program, but has to be compiled for every
 * kernel and survive its API changes with LINUX_VERSION_CODE guards.
 *
 * It hooks the sched_process_exec tracepoint and keeps the last
 * KMATRIX_RING execs (pid, parent tgid, comm) in a ring. User space talks
 * to it through the character device /dev/kmatrix:
 *
 *   read             one line per recorded exec, oldest first:
 *                    "<seq> <pid> <parent-tgid> <comm>\n" (comm is last: it
 *                    may contain spaces). After a "state" command, the
 *                    reply to it instead.
 *   write "reset"    forget every record.
 *   write "parent N" record only execs whose parent's tgid is N (0: all).
 *   write "state N"  the next read on this file returns
 *                    "<pid> <raw task state> <state char>\n" for pid N, the
 *                    char being the one /proc/N/stat shows.
 *
 * Each open file sees a snapshot taken at its first read after open or
 * after its last write. The device is a stream: it cannot seek.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <generated/utsrelease.h>

#define KMATRIX_NAME "kmatrix"
#define KMATRIX_RING 1024
/* "<seq> <pid> <ppid> <comm>\n": 20 + 3 * 1 + 2 * 11 + TASK_COMM_LEN + 1 */
#define KMATRIX_LINE (64 + TASK_COMM_LEN)

struct kmatrix_record {
	u64 seq;
	pid_t pid;
	pid_t ppid;
	char comm[TASK_COMM_LEN];
};

static DEFINE_SPINLOCK(ring_lock);
static struct kmatrix_record ring[KMATRIX_RING];
static u64 ring_next;	/* seq of the next record; ring holds [ring_first, ring_next) */
static u64 ring_first;
static atomic_t parent_filter = ATOMIC_INIT(0);

static struct tracepoint *exec_tp;
static dev_t kmatrix_devt;
static struct cdev kmatrix_cdev;
static struct class *kmatrix_class;
static struct device *kmatrix_device;

/*
 * The probe signature is the tracepoint's TP_PROTO with a leading data
 * pointer; sched_process_exec has been (p, old_pid, bprm) since 3.4.
 */
static void kmatrix_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			       struct linux_binprm *bprm)
{
	struct kmatrix_record *r;
	unsigned long flags;
	pid_t ppid;
	int filter;

	rcu_read_lock();
	ppid = task_tgid_nr(rcu_dereference(p->real_parent));
	rcu_read_unlock();

	filter = atomic_read(&parent_filter);
	if (filter && filter != ppid)
		return;

	spin_lock_irqsave(&ring_lock, flags);
	r = &ring[ring_next % KMATRIX_RING];
	r->seq = ring_next++;
	r->pid = task_tgid_nr(p);
	r->ppid = ppid;
	/* comm is already the new program's: begin_new_exec() set it. */
	get_task_comm(r->comm, p);
	if (ring_next - ring_first > KMATRIX_RING)
		ring_first = ring_next - KMATRIX_RING;
	spin_unlock_irqrestore(&ring_lock, flags);
}

/*
 * The raw scheduler state of a task. Linux 5.14 renamed task_struct's
 * "volatile long state" to "unsigned int __state" (commit 2f064a59a11f,
 * "sched: Change task_struct::state") so that every access goes through
 * READ_ONCE/WRITE_ONCE: the same change the BPF program survives with CO-RE.
 */
static unsigned int kmatrix_raw_state(struct task_struct *p)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 14, 0)
	return READ_ONCE(p->__state);
#else
	return (unsigned int)READ_ONCE(p->state);
#endif
}

struct kmatrix_file {
	struct mutex lock;
	bool ready;	/* buf holds what reads return */
	size_t len, pos;
	char *buf;	/* KMATRIX_RING * KMATRIX_LINE bytes */
};

static void kmatrix_snapshot(struct kmatrix_file *f)
{
	struct kmatrix_record *snap, *r;
	unsigned long flags;
	u64 first, next, i;
	size_t n = 0;

	snap = kmalloc_array(KMATRIX_RING, sizeof(*snap), GFP_KERNEL);
	f->len = 0;
	f->pos = 0;
	f->ready = true;
	if (!snap)
		return;
	spin_lock_irqsave(&ring_lock, flags);
	first = ring_first;
	next = ring_next;
	for (i = first; i < next; i++)
		snap[n++] = ring[i % KMATRIX_RING];
	spin_unlock_irqrestore(&ring_lock, flags);

	for (r = snap; r < snap + n; r++)
		f->len += scnprintf(f->buf + f->len, KMATRIX_RING * KMATRIX_LINE - f->len,
				    "%llu %d %d %s\n", r->seq, r->pid, r->ppid, r->comm);
	kfree(snap);
}

static int kmatrix_open(struct inode *inode, struct file *file)
{
	struct kmatrix_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->buf = kvmalloc(KMATRIX_RING * KMATRIX_LINE, GFP_KERNEL);
	if (!f->buf) {
		kfree(f);
		return -ENOMEM;
	}
	mutex_init(&f->lock);
	file->private_data = f;
	/* A stream: reads ignore the file position and lseek fails. */
	return stream_open(inode, file);
}

static int kmatrix_release(struct inode *inode, struct file *file)
{
	struct kmatrix_file *f = file->private_data;

	kvfree(f->buf);
	kfree(f);
	return 0;
}

static ssize_t kmatrix_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct kmatrix_file *f = file->private_data;
	size_t n;

	mutex_lock(&f->lock);
	if (!f->ready)
		kmatrix_snapshot(f);
	n = min(count, f->len - f->pos);
	if (n && copy_to_user(ubuf, f->buf + f->pos, n)) {
		mutex_unlock(&f->lock);
		return -EFAULT;
	}
	f->pos += n;
	mutex_unlock(&f->lock);
	return n;
}

static ssize_t kmatrix_state_reply(struct kmatrix_file *f, int nr)
{
	struct task_struct *p;
	unsigned int raw;
	char c;

	rcu_read_lock();
	p = pid_task(find_vpid(nr), PIDTYPE_PID);
	if (!p) {
		rcu_read_unlock();
		return -ESRCH;
	}
	raw = kmatrix_raw_state(p);
	c = task_state_to_char(p);
	rcu_read_unlock();

	f->len = scnprintf(f->buf, KMATRIX_LINE, "%d %u %c\n", nr, raw, c);
	f->pos = 0;
	f->ready = true;
	return 0;
}

static ssize_t kmatrix_write(struct file *file, const char __user *ubuf, size_t count, loff_t *ppos)
{
	struct kmatrix_file *f = file->private_data;
	unsigned long flags;
	char cmd[64];
	ssize_t err = 0;
	int nr;

	if (count == 0 || count >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, count))
		return -EFAULT;
	cmd[count] = '\0';
	strim(cmd);

	mutex_lock(&f->lock);
	f->ready = false;
	if (strcmp(cmd, "reset") == 0) {
		spin_lock_irqsave(&ring_lock, flags);
		ring_first = ring_next;
		spin_unlock_irqrestore(&ring_lock, flags);
	} else if (sscanf(cmd, "parent %d", &nr) == 1 && nr >= 0) {
		atomic_set(&parent_filter, nr);
	} else if (sscanf(cmd, "state %d", &nr) == 1 && nr > 0) {
		err = kmatrix_state_reply(f, nr);
	} else {
		err = -EINVAL;
	}
	mutex_unlock(&f->lock);
	return err ? err : count;
}

static const struct file_operations kmatrix_fops = {
	.owner = THIS_MODULE,
	.open = kmatrix_open,
	.release = kmatrix_release,
	.read = kmatrix_read,
	.write = kmatrix_write,
	/*
	 * Linux 6.12 removed no_llseek (commit cb787f4ac0c2, "[tree-wide]
	 * finally take no_llseek out"); since 6.0 it was a NULL #define, and a
	 * NULL ->llseek now means "not seekable" by itself.
	 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
	.llseek = no_llseek,
#endif
};

/*
 * devtmpfs asks the class for the node's mode. Linux 6.2 made the device
 * argument const (commit ff62b8e6588f, "driver core: make struct
 * class.devnode() take a const *").
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
static char *kmatrix_devnode(const struct device *dev, umode_t *mode)
#else
static char *kmatrix_devnode(struct device *dev, umode_t *mode)
#endif
{
	if (mode)
		*mode = 0666;
	return NULL;
}

static void kmatrix_find_tp(struct tracepoint *tp, void *priv)
{
	if (strcmp(tp->name, "sched_process_exec") == 0)
		*(struct tracepoint **)priv = tp;
}

static int __init kmatrix_init(void)
{
	int err;

	/*
	 * The tracepoint's own symbol (__tracepoint_sched_process_exec) is not
	 * exported to modules, so find it by name.
	 */
	for_each_kernel_tracepoint(kmatrix_find_tp, &exec_tp);
	if (!exec_tp) {
		pr_err(KMATRIX_NAME ": no sched_process_exec tracepoint\n");
		return -ENOENT;
	}

	err = alloc_chrdev_region(&kmatrix_devt, 0, 1, KMATRIX_NAME);
	if (err)
		return err;
	cdev_init(&kmatrix_cdev, &kmatrix_fops);
	kmatrix_cdev.owner = THIS_MODULE;
	err = cdev_add(&kmatrix_cdev, kmatrix_devt, 1);
	if (err)
		goto err_region;

	/*
	 * Linux 6.4 dropped class_create()'s owner argument (commit
	 * 1aaba11da9aa, "driver core: class: remove module * from
	 * class_create()"): the owner was never used.
	 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	kmatrix_class = class_create(KMATRIX_NAME);
#else
	kmatrix_class = class_create(THIS_MODULE, KMATRIX_NAME);
#endif
	if (IS_ERR(kmatrix_class)) {
		err = PTR_ERR(kmatrix_class);
		goto err_cdev;
	}
	kmatrix_class->devnode = kmatrix_devnode;

	kmatrix_device = device_create(kmatrix_class, NULL, kmatrix_devt, NULL, KMATRIX_NAME);
	if (IS_ERR(kmatrix_device)) {
		err = PTR_ERR(kmatrix_device);
		goto err_class;
	}

	err = tracepoint_probe_register(exec_tp, kmatrix_probe_exec, NULL);
	if (err)
		goto err_device;

	pr_info(KMATRIX_NAME ": recording execs (built for %s, task state in %s)\n",
		UTS_RELEASE,
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 14, 0)
		"__state"
#else
		"state"
#endif
	);
	return 0;

err_device:
	device_destroy(kmatrix_class, kmatrix_devt);
err_class:
	class_destroy(kmatrix_class);
err_cdev:
	cdev_del(&kmatrix_cdev);
err_region:
	unregister_chrdev_region(kmatrix_devt, 1);
	return err;
}

static void __exit kmatrix_exit(void)
{
	tracepoint_probe_unregister(exec_tp, kmatrix_probe_exec, NULL);
	/* No probe may still be running when the module text goes away. */
	tracepoint_synchronize_unregister();
	device_destroy(kmatrix_class, kmatrix_devt);
	class_destroy(kmatrix_class);
	cdev_del(&kmatrix_cdev);
	unregister_chrdev_region(kmatrix_devt, 1);
	pr_info(KMATRIX_NAME ": unloaded\n");
}

module_init(kmatrix_init);
module_exit(kmatrix_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmatrix: records process executions and reports task states via /dev/kmatrix");
