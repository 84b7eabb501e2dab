/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mdevmig private header: the objects of the module and how they are locked.
 *
 * Objects
 *   mdevmig_parent  one per backing function: a sim parent (kernel memory) or a PCI
 *                   function bound to the mdevmig PCI driver (its memory BAR). It is
 *                   registered with the mdev core and offers MDEVMIG_NR_TYPES types,
 *                   each a power-of-two fraction of the parent's memory.
 *   mdevmig_dev     one per mdev instance, named inst: the vfio_device, its slice of parent
 *                   memory and (later) the device model and migration state.
 *
 * Lock order (outer to inner)
 *   mdevmig_parents_lock  ->  parent->slots_lock
 *   inst->mig_lock  ->  migf->lock  ->  inst->state_lock
 *   mmap_lock (fault path)  ->  inst->mode_lock
 *   inst->state_lock  ->  inst->mode_lock  ->  i_mmap_rwsem (zapping, write-protecting)
 *   inst->state_lock  ->  inst->irq_lock
 *   inst->state_lock  ->  inst->dmalog.lock
 * Nothing is copied from or to user memory while holding mode_lock: a user buffer
 * could be a mapping of BAR2 itself, whose fault handler takes mode_lock.
 */
#ifndef MDEVMIG_H
#define MDEVMIG_H

#include <linux/mdev.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/kref.h>
#include <linux/vfio.h>
#include <linux/workqueue.h>
#include <linux/eventfd.h>
#include <linux/mdevmig.h>

#include "model.h"
#include "stream.h"

#include "compat.h"

/*
 * Memory is handed out in MDEVMIG_MAX_SLICES equal slots. Type i offers slices of
 * 1/(1 << i) of the memory, from the whole function down to 1/MDEVMIG_MAX_SLICES; a slice
 * starts at a multiple of its own size, so slices never overlap.
 */
#define MDEVMIG_NR_TYPES	4
#define MDEVMIG_MAX_SLICES	(1u << (MDEVMIG_NR_TYPES - 1))

enum mdevmig_parent_kind {
	MDEVMIG_PARENT_SIM,
	MDEVMIG_PARENT_PCI,
};

struct mdevmig_parent;

struct mdevmig_type {
	struct mdev_type mtype;		/* embedded; the core keeps a pointer */
	struct mdevmig_parent *parent;
	unsigned int divisor;		/* slice = parent memory / divisor */
	char sysfs_name[16];
	char pretty_name[32];
};

struct mdevmig_parent {
	struct mdev_parent mparent;	/* the core memsets this at registration */
	struct device *dev;		/* sim: &sim_dev; pci: &pdev->dev */
	struct device sim_dev;		/* valid for sim parents only */
	enum mdevmig_parent_kind kind;
	char name[32];

	/* Backing memory, fixed for the parent's lifetime. */
	void *mem_va;			/* sim: vmalloc_user(); pci: memremap() of the BAR */
	phys_addr_t mem_phys;		/* pci: BAR start; sim: 0 (per-page PFNs) */
	u64 mem_size;			/* bytes, a power of two of at least MDEVMIG_MAX_SLICES pages */
	int pci_bar;			/* pci: the BAR backing mem */

	struct mdevmig_type types[MDEVMIG_NR_TYPES];
	struct mdev_type *type_ptrs[MDEVMIG_NR_TYPES];

	struct kref ref;		/* the registration's and one per instance */
	struct mutex slots_lock;	/* protects slots */
	unsigned long slots;		/* bit i set: slot i is taken by an instance */

	struct list_head node;		/* in mdevmig_parents, under mdevmig_parents_lock */
};

/* How user mappings of BAR2 (device memory) reach the memory; see DESIGN.md §4. */
enum mdevmig_bar2_mode {
	MDEVMIG_MODE_PASSTHROUGH,	/* faults map pages writable */
	MDEVMIG_MODE_TRACKED,		/* read faults map read-only, first write marks dirty */
	MDEVMIG_MODE_TRAPPED,		/* no mappings: region read/write only */
};

/*
 * Region file offsets. Each instance owns a window of the device fd's offset space:
 * offset = id << 44 | region index << 40 | offset in region. On 6.1 all VFIO device
 * files share one anon inode, so the window keeps unmap_mapping_range() of one
 * instance's BAR2 from touching any other mapping.
 */
#define MDEVMIG_REGION_SHIFT	40
#define MDEVMIG_ID_SHIFT	44
#define MDEVMIG_MAX_IDS		(1u << (63 - MDEVMIG_ID_SHIFT))
#define MDEVMIG_NR_REGIONS	(VFIO_PCI_NUM_REGIONS + 1)	/* + the v1 migration region */

#define MDEVMIG_MSI_VECTORS	MDEVMIG_MSI_MAX_VECTORS

/* PAGES records the module emits carry at most this many pages (256 KiB of data). */
#define MDEVMIG_SAVE_PAGES		64
#define MDEVMIG_SAVE_RECORD_MAX		MDEVMIG_STREAM_PAGES_SIZE(MDEVMIG_SAVE_PAGES)
/* An upper bound of the COMPAT and END records, for size estimates. */
#define MDEVMIG_SMALL_RECORD_MAX	128

/* Which migration interface a user drives; the two are exclusive while in use. */
enum mdevmig_frontend {
	MDEVMIG_FE_NONE,
	MDEVMIG_FE_V2,		/* VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE + data_fd */
	MDEVMIG_FE_V1,		/* the v1 migration region */
};

/*
 * Produces one saving session's stream: COMPAT, every page once (the initial pass),
 * then pages found dirty by each harvest, and once the device is stopped
 * (stopcopy) the device state and END. Owned by a data_fd or the v1 region.
 */
struct mdevmig_saver {
	struct mdevmig_dev *inst;
	bool stopcopy;			/* device stopped: finish with state + END */
	bool compat_sent;
	bool state_sent;
	bool end_sent;
	unsigned long next_page;	/* initial pass: pages below were sent */
	unsigned long *to_send;		/* harvested dirty pages not sent yet */
	unsigned long to_send_count;
	u64 bytes;			/* produced */
	u32 iterations;			/* harvests that found dirty pages */
	unsigned long last_dirty;	/* pages in the latest such harvest */
};

/* A v2 data_fd. */
struct mdevmig_migf {
	struct file *filp;
	struct mdevmig_dev *inst;	/* not touched once disabled */
	struct mutex lock;		/* protects all below */
	bool disabled;			/* reads/writes fail with -ENODEV */
	bool saving;
	struct mdevmig_saver saver;	/* saving */
	u8 *buf;			/* saving: staged bytes [buf_pos, buf_len) */
	size_t buf_len;
	size_t buf_pos;
	struct mdevmig_loader *ld;	/* resuming */
	u8 *ldbuf;
	u64 bytes_in;
};

/* The v1 migration region's registers and data section (lm_v1.c). */
struct mdevmig_v1 {
	u32 device_state;		/* VFIO_DEVICE_STATE_V1_* bits */
	u64 data_size;			/* bytes staged in the data section */
	u8 *data;			/* MDEVMIG_V1_DATA_SIZE bytes, vmalloc_user() */
	struct mdevmig_saver *saver;	/* while SAVING */
	struct mdevmig_loader *ld;	/* while RESUMING */
	u8 *ldbuf;
};

/* Device DMA logging (dirty.c). */
struct mdevmig_log_range {
	u64 iova;
	u64 length;
	unsigned long *bits;		/* one bit per logged page */
};

struct mdevmig_dmalog {
	struct mutex lock;		/* protects all below; taken by the engine's DMA writes */
	bool on;
	unsigned int page_shift;
	u32 nr;
	struct mdevmig_log_range *ranges;
};

struct mdevmig_dev {
	struct vfio_device vdev;	/* must be first: vfio_alloc_device() checks */
	struct mdevmig_parent *parent;
	struct mdevmig_type *type;
	unsigned int id;		/* unique among live instances; names the offset window */
	unsigned int first_slot;	/* slice = slots [first_slot, first_slot + nr_slots) */
	unsigned int nr_slots;
	u64 mem_offset;			/* byte offset of the slice in parent memory */
	u64 mem_size;			/* bytes */
	u8 *mem;			/* kernel address of the slice */
	unsigned long nr_pages;		/* mem_size >> PAGE_SHIFT */

	/* Device model, engine, open state. */
	struct mutex state_lock;	/* protects model, engine_stopped, opened,
					 * engine_tokens, engine_refill */
	struct mdevmig_model model;
	struct delayed_work engine_work;	/* runs model steps; takes state_lock */
	u64 engine_budget;		/* bytes per second, 0: unlimited (sysfs; READ_ONCE) */
	u64 engine_tokens;		/* bytes the engine may still move now */
	unsigned long engine_refill;	/* jiffies of the last refill of engine_tokens */
	bool engine_stopped;		/* no DMA and no interrupts may be issued */
	atomic_t engine_yield;		/* state changes waiting for state_lock: the engine
					 * work steps aside instead of re-taking it */
	bool opened;

	/* Interrupt triggers set by VFIO_DEVICE_SET_IRQS. */
	struct mutex irq_lock;		/* protects the fields below */
	struct eventfd_ctx *intx_trigger;
	struct eventfd_ctx *msi_trigger[MDEVMIG_MSI_VECTORS];
	struct eventfd_ctx *req_trigger;	/* VFIO_PCI_REQ_IRQ_INDEX: asked to close */
	bool intx_masked;		/* user-visible INTx mask (auto-set on delivery) */
	bool intx_level;		/* the model's INTx line */
	/* INTx unmask eventfd (KVM's irqfd resampler): not under irq_lock, its work takes
	 * irq_lock; set and cleared by vfio_virqfd_enable/disable (their own locking). */
	struct virqfd *intx_unmask;

	/* BAR2 access mode and dirty tracking. */
	struct mutex mode_lock;		/* protects mode, force_trapped, bar2_mapping; held by faults */
	enum mdevmig_bar2_mode mode;
	bool force_trapped;		/* sysfs: keep BAR2 trapped, advertise no mmap */
	bool no_mmap;			/* fixed at creation: PCI parent, no pci_bar2_mmap;
					 * force_trapped stays set */
	struct address_space *bar2_mapping;	/* of the device file, set by the first mmap
						 * after an open, cleared at close */
	unsigned long *dirty;		/* one bit per page; atomic bitops, harvested under mode_lock */
	unsigned long *pte_dirty;	/* scratch for a re-arm: pages whose PTE was found dirty;
					 * used under mode_lock, empty outside a harvest */
	bool logging;			/* dirty logging on (tracked mode, or trapped while logging) */

	struct mdevmig_dmalog dmalog;	/* guest pages written by the engine */

	/* Migration: one engine (mig.c), two front-ends (lm_v2.c, lm_v1.c). */
	struct mutex mig_lock;		/* protects everything below; outermost lock */
	enum vfio_device_mig_state mig_state;	/* as v2 sees it; v1 maps onto it */
	enum mdevmig_frontend frontend;
	struct mdevmig_migf *saving_migf;
	struct mdevmig_migf *resuming_migf;
	struct mdevmig_v1 v1;
	bool irq_stopped;		/* STOP states: no interrupts */
	u64 stat_bytes_out;		/* totals over all sessions, for sysfs */
	u64 stat_bytes_in;
	u32 stat_iterations;
	unsigned long stat_last_dirty;
	int stat_last_error;		/* enum mdevmig_load_reason of the last failed load */
};

extern struct mdev_driver mdevmig_mdev_driver;
extern struct class *mdevmig_class;

/* parent.c */
int mdevmig_parents_init(unsigned int nr_sim, unsigned int sim_mem_mb);
void mdevmig_parents_exit(void);
int mdevmig_slots_claim(struct mdevmig_parent *parent, unsigned int nr_slots,
			unsigned int *first_slot);
void mdevmig_slots_release(struct mdevmig_parent *parent, unsigned int first_slot,
			   unsigned int nr_slots);

static inline u64 mdevmig_region_offset(const struct mdevmig_dev *inst, unsigned int index)
{
	return ((u64)inst->id << MDEVMIG_ID_SHIFT) | ((u64)index << MDEVMIG_REGION_SHIFT);
}

/* vfio_dev.c */
int mdevmig_mdev_probe(struct mdev_device *mdev);
void mdevmig_mdev_remove(struct mdev_device *mdev);
extern const struct attribute_group *mdevmig_mdev_groups[];

/* engine.c: the device model's host side (DMA, interrupts, work) */
extern const struct mdevmig_model_ops mdevmig_model_host_ops;
int mdevmig_engine_init(void);
void mdevmig_engine_exit(void);
void mdevmig_engine_lock_for_change(struct mdevmig_dev *inst);
void mdevmig_engine_start_locked(struct mdevmig_dev *inst);
void mdevmig_engine_stop_locked(struct mdevmig_dev *inst);
void mdevmig_engine_cancel(struct mdevmig_dev *inst);
void mdevmig_engine_init_dev(struct mdevmig_dev *inst);
extern struct device_attribute mdevmig_dev_attr_engine_budget;

/* irq.c */
int mdevmig_set_irqs(struct mdevmig_dev *inst, unsigned long arg);
int mdevmig_get_irq_info(struct mdevmig_dev *inst, unsigned long arg);
void mdevmig_irq_disable_all(struct mdevmig_dev *inst);
void mdevmig_irq_msi(struct mdevmig_dev *inst, unsigned int vector);
void mdevmig_irq_intx(struct mdevmig_dev *inst, bool level);
void mdevmig_irq_resume(struct mdevmig_dev *inst);
void mdevmig_request(struct vfio_device *vdev, unsigned int count);

/* mem.c: BAR2, access modes, dirty pages */
int mdevmig_mem_init(struct mdevmig_dev *inst);
void mdevmig_mem_free(struct mdevmig_dev *inst);
int mdevmig_bar2_mmap(struct mdevmig_dev *inst, struct vm_area_struct *vma);
ssize_t mdevmig_bar2_rw(struct mdevmig_dev *inst, char __user *ubuf, size_t count,
			u64 pos, bool write);
void mdevmig_set_mode(struct mdevmig_dev *inst, enum mdevmig_bar2_mode mode, bool logging);
void mdevmig_mem_reset(struct mdevmig_dev *inst);
unsigned long mdevmig_dirty_count(struct mdevmig_dev *inst);
unsigned long mdevmig_dirty_harvest(struct mdevmig_dev *inst, unsigned long *out);
const char *mdevmig_mode_name(enum mdevmig_bar2_mode mode);

/*
 * mig.c: what the migration front-ends share (saver, loader, state effects, reset of
 * the shared state, sysfs). Calls no front-end.
 */
void mdevmig_mig_init(struct mdevmig_dev *inst);
void mdevmig_mig_reset_locked(struct mdevmig_dev *inst, bool run);
u64 mdevmig_page_cost(unsigned long pages);
int mdevmig_saver_init(struct mdevmig_saver *saver, struct mdevmig_dev *inst,
		       bool stopcopy);
void mdevmig_saver_free(struct mdevmig_saver *saver);
long mdevmig_saver_produce(struct mdevmig_saver *saver, u8 *buf, size_t size);
void mdevmig_saver_pending(struct mdevmig_saver *saver, u64 *initial, u64 *dirty);
int mdevmig_loader_alloc(struct mdevmig_loader **ld, u8 **ldbuf);
int mdevmig_loader_start(struct mdevmig_dev *inst, struct mdevmig_loader **ld,
			 u8 **ldbuf);
int mdevmig_loader_write(struct mdevmig_dev *inst, struct mdevmig_loader *ld,
			 const u8 *data, size_t len);
int mdevmig_loader_end(struct mdevmig_dev *inst, struct mdevmig_loader *ld);
void mdevmig_loader_free(struct mdevmig_loader **ld, u8 **ldbuf);
void mdevmig_dev_run_locked(struct mdevmig_dev *inst, bool dma, bool irq);
extern struct device_attribute mdevmig_dev_attr_migration;

/* lm_v2.c: the v2 front-end (migration_set_state, data_fd), over mig.c */
void mdevmig_v2_init(struct mdevmig_dev *inst);
void mdevmig_v2_reset_locked(struct mdevmig_dev *inst);

/* dirty.c: device DMA logging */
void mdevmig_dmalog_init(struct mdevmig_dev *inst);
void mdevmig_dmalog_stop(struct mdevmig_dev *inst);
void mdevmig_dmalog_free(struct mdevmig_dev *inst);
void mdevmig_dmalog_mark(struct mdevmig_dev *inst, u64 iova, u64 len);

/* lm_v1.c: the v1 migration region (QEMU <= 7.2), over mig.c */
#define MDEVMIG_V1_REGION_INDEX		VFIO_PCI_NUM_REGIONS
#define MDEVMIG_V1_DATA_OFFSET		PAGE_SIZE
#define MDEVMIG_V1_DATA_SIZE		(1u << 20)
#define MDEVMIG_V1_REGION_SIZE		(MDEVMIG_V1_DATA_OFFSET + MDEVMIG_V1_DATA_SIZE)
int mdevmig_v1_init(struct mdevmig_dev *inst);
void mdevmig_v1_free(struct mdevmig_dev *inst);
void mdevmig_v1_reset_locked(struct mdevmig_dev *inst);
ssize_t mdevmig_v1_rw(struct mdevmig_dev *inst, char __user *ubuf, size_t count,
		      u64 off, bool write);
int mdevmig_v1_mmap(struct mdevmig_dev *inst, struct vm_area_struct *vma, u64 off);
int mdevmig_v1_region_info(struct mdevmig_dev *inst, struct vfio_region_info *info,
			   struct vfio_info_cap *caps);

#endif /* MDEVMIG_H */
