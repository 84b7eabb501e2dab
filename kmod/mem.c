// SPDX-License-Identifier: GPL-2.0
/*
 * BAR2, the instance's device memory: the three access modes of DESIGN.md §4, the
 * mmap fault path, trapped region read/write, and dirty-page tracking.
 *
 * Locking of the user mappings of BAR2 (all of them belong to inst->bar2_mapping, the
 * device file's address_space):
 *
 * - Mode switches (and force_trapped, and close) zap every user PTE with
 *   unmap_mapping_range() while holding mode_lock. The fault handler and pfn_mkwrite
 *   take mode_lock too and install every PTE they install inside that critical
 *   section, so a fault racing a switch either completes before it (and all it mapped
 *   is zapped) or runs after it (and sees the new mode).
 * - A fault maps ahead: besides the faulting page it maps the rest of the aligned
 *   MDEVMIG_MAP_AHEAD block around it, clipped to the vma and the instance's slice;
 *   writable in passthrough, read-only in tracked mode (a write to such a neighbour
 *   still comes to pfn_mkwrite and is marked). A fault never installs a PTE for a page
 *   outside the instance's own slice.
 * - In tracked mode a PTE turns writable only through the fault handler or
 *   pfn_mkwrite, which mark the page dirty under mode_lock first. pfn_mkwrite returns
 *   before the core makes the PTE writable (and dirty), outside mode_lock, so a
 *   harvest can run in between and find that PTE still read-only.
 * - A harvest in tracked mode re-arms tracking under mode_lock. Where the kernel has
 *   the mapping dirty helpers (compat.h) it write-protects every PTE
 *   (wp_shared_mapping_range()) and then moves the dirty bits of the PTEs into the
 *   dirty set (clean_record_shared_mapping_range()), so reads keep their mappings and
 *   a write that raced the previous harvest as above is found by this one. The
 *   invariant: every write since the previous harvest is in the dirty set or in a
 *   dirty PTE. Elsewhere a harvest zaps, as a mode switch does.
 * - Whose PTEs: before 6.10 the mapping is the kernel-wide anonymous inode's, shared
 *   by every VFIO device file and other anon-inode files, so every walk and zap over
 *   "our" range meets whatever else is mapped at those page offsets. Each instance's
 *   regions sit in an offset window of its own (mdevmig.h; ids start at 1, and
 *   vfio-pci's regions, index << 40, lie in window 0), so no other instance or VFIO
 *   device is mapped there. Were one, write-protecting would clean its dirty PTEs
 *   into our dirty set (it would lose the writes only those PTEs hold, and we would
 *   report pages it wrote), while a zap would only make its PTEs fault again.
 * - munmap: both walks and unmap_mapping_range() find vmas through the mapping's
 *   i_mmap tree under i_mmap_rwsem, and munmap unlinks a vma from that tree before it
 *   frees the vma's page tables, so no walk meets a vma being torn down.
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/uaccess.h>

#include "mdevmig.h"

/*
 * A PCI parent's slice is MMIO: a user mapping of it is a PFNMAP range that the type1
 * IOMMU driver will map for DMA (without a page reference) when a passthrough device
 * shares the container, and nothing revokes that IOMMU mapping when the instance is
 * closed and the slice goes to its next tenant. So PCI-parent instances are trapped
 * (region read/write only, no mmap) unless the administrator opts in here. Read when
 * an instance is created. See README.md, "Security".
 */
static bool pci_bar2_mmap;
module_param(pci_bar2_mmap, bool, 0644);
MODULE_PARM_DESC(pci_bar2_mmap,
		 "Let users mmap BAR2 of instances on PCI parents (default N: trapped access only; "
		 "Y lets a passthrough device in the same VFIO container keep DMA access to a "
		 "slice after its instance is closed)");

/* Pages a fault maps at once: the aligned 64 KiB block around the faulting page. */
#define MDEVMIG_MAP_AHEAD	16

/* Bytes zeroed between two chances to reschedule. */
#define MDEVMIG_ZERO_CHUNK	(2u << 20)

const char *mdevmig_mode_name(enum mdevmig_bar2_mode mode)
{
	switch (mode) {
	case MDEVMIG_MODE_PASSTHROUGH:
		return "passthrough";
	case MDEVMIG_MODE_TRACKED:
		return "tracked";
	case MDEVMIG_MODE_TRAPPED:
		return "trapped";
	}
	return "?";
}

static enum mdevmig_bar2_mode mdevmig_effective_mode_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->mode_lock);
	return inst->force_trapped ? MDEVMIG_MODE_TRAPPED : inst->mode;
}

static unsigned long mdevmig_page_pfn(struct mdevmig_dev *inst, unsigned long page)
{
	struct mdevmig_parent *parent = inst->parent;
	u64 off = inst->mem_offset + ((u64)page << PAGE_SHIFT);

	if (parent->kind == MDEVMIG_PARENT_SIM)
		return vmalloc_to_pfn((u8 *)parent->mem_va + off);
	return (parent->mem_phys + off) >> PAGE_SHIFT;
}

/* Removes every user PTE of this instance's BAR2; faults rebuild them in the new mode. */
static void mdevmig_zap_locked(struct mdevmig_dev *inst)
{
	lockdep_assert_held(&inst->mode_lock);
	if (inst->bar2_mapping)
		unmap_mapping_range(inst->bar2_mapping,
				    mdevmig_region_offset(inst, VFIO_PCI_BAR2_REGION_INDEX),
				    inst->mem_size, true);
}

/*
 * Re-arms tracking by write-protecting: no PTE stays writable, and the pages whose
 * PTE was written since the previous re-arm are marked (see the top of this file for
 * why both). Faults are held off by mode_lock meanwhile. Only with
 * MDEVMIG_HAVE_WP_MAPPING; does nothing otherwise.
 */
static void mdevmig_wp_rearm_locked(struct mdevmig_dev *inst)
{
#if MDEVMIG_HAVE_WP_MAPPING
	pgoff_t first = mdevmig_region_offset(inst, VFIO_PCI_BAR2_REGION_INDEX) >> PAGE_SHIFT;
	pgoff_t start = inst->nr_pages, end = 0;	/* start >= end: none recorded */
	unsigned long page;

	lockdep_assert_held(&inst->mode_lock);
	if (!inst->bar2_mapping)
		return;
	wp_shared_mapping_range(inst->bar2_mapping, first, inst->nr_pages);
	clean_record_shared_mapping_range(inst->bar2_mapping, first, inst->nr_pages, first,
					  inst->pte_dirty, &start, &end);
	if (start >= end)
		return;
	/* The engine sets dirty bits without mode_lock: atomic ORs, not a bitmap_or(). */
	page = start;
	for_each_set_bit_from(page, inst->pte_dirty, end)
		set_bit(page, inst->dirty);
	bitmap_clear(inst->pte_dirty, start, end - start);
#endif
}

/* Zeroes the slice; up to 4 GiB, so in chunks. Nothing may access it meanwhile. */
static void mdevmig_mem_zero(struct mdevmig_dev *inst)
{
	u64 off;

	for (off = 0; off < inst->mem_size; off += MDEVMIG_ZERO_CHUNK) {
		memset(inst->mem + off, 0,
		       min_t(u64, MDEVMIG_ZERO_CHUNK, inst->mem_size - off));
		cond_resched();
	}
}

/*
 * A new instance's memory starts zeroed: sim memory is zeroed when allocated and at
 * every close, but a PCI BAR holds whatever was there before the parent was bound.
 */
int mdevmig_mem_init(struct mdevmig_dev *inst)
{
	bool pci = inst->parent->kind == MDEVMIG_PARENT_PCI;

	inst->mem = (u8 *)inst->parent->mem_va + inst->mem_offset;
	inst->nr_pages = inst->mem_size >> PAGE_SHIFT;
	inst->dirty = bitmap_zalloc(inst->nr_pages, GFP_KERNEL);
	if (!inst->dirty)
		return -ENOMEM;
	if (MDEVMIG_HAVE_WP_MAPPING) {
		inst->pte_dirty = bitmap_zalloc(inst->nr_pages, GFP_KERNEL);
		if (!inst->pte_dirty) {
			bitmap_free(inst->dirty);
			return -ENOMEM;
		}
	}
	mutex_init(&inst->mode_lock);
	inst->mode = MDEVMIG_MODE_PASSTHROUGH;
	inst->no_mmap = pci && !READ_ONCE(pci_bar2_mmap);
	inst->force_trapped = inst->no_mmap;
	if (pci)
		mdevmig_mem_zero(inst);
	return 0;
}

void mdevmig_mem_free(struct mdevmig_dev *inst)
{
	bitmap_free(inst->pte_dirty);
	bitmap_free(inst->dirty);
	mutex_destroy(&inst->mode_lock);
}

/*
 * Switches BAR2 to @mode and dirty logging on or off (tracked mode implies it).
 * Turning logging on starts from an empty dirty set.
 */
void mdevmig_set_mode(struct mdevmig_dev *inst, enum mdevmig_bar2_mode mode, bool logging)
{
	logging |= mode == MDEVMIG_MODE_TRACKED;
	mutex_lock(&inst->mode_lock);
	if (logging && !inst->logging)
		bitmap_zero(inst->dirty, inst->nr_pages);
	if (mode != inst->mode)
		mdevmig_zap_locked(inst);
	inst->mode = mode;
	WRITE_ONCE(inst->logging, logging);
	mutex_unlock(&inst->mode_lock);
}

/*
 * Moves the dirty bits into @out (ORed in; may be NULL to drop them) and re-arms
 * tracking: pages written from now on fault again and are marked again.
 */
unsigned long mdevmig_dirty_harvest(struct mdevmig_dev *inst, unsigned long *out)
{
	unsigned long i, words = BITS_TO_LONGS(inst->nr_pages), count = 0;
	bool tracked;

	mutex_lock(&inst->mode_lock);
	tracked = mdevmig_effective_mode_locked(inst) == MDEVMIG_MODE_TRACKED;
	/*
	 * Write-protecting re-arms first: the pages it finds written through a writable
	 * PTE join this harvest. Every time, even when the set is empty: a write that
	 * raced the previous harvest may sit in a dirty PTE with its bit harvested.
	 */
	if (tracked && MDEVMIG_HAVE_WP_MAPPING)
		mdevmig_wp_rearm_locked(inst);
	for (i = 0; i < words; i++) {
		unsigned long w = xchg(&inst->dirty[i], 0);

		count += hweight_long(w);
		if (out)
			out[i] |= w;
	}
	/*
	 * Zapping re-arms last, and only if a page was dirty: only dirty pages can have
	 * writable PTEs, and a racing pfn_mkwrite finds its PTE gone and faults again.
	 */
	if (tracked && !MDEVMIG_HAVE_WP_MAPPING && count)
		mdevmig_zap_locked(inst);
	mutex_unlock(&inst->mode_lock);
	return count;
}

unsigned long mdevmig_dirty_count(struct mdevmig_dev *inst)
{
	return bitmap_weight(inst->dirty, inst->nr_pages);
}

/*
 * At close: the device as the next opener sees it, memory zeroed, passthrough, no
 * tracking. The device file is gone, so no mapping of BAR2 is left (a mapping holds
 * the file) and the mapping it belonged to is forgotten; with no file, no engine and
 * no migration left, the memory is zeroed without mode_lock.
 */
void mdevmig_mem_reset(struct mdevmig_dev *inst)
{
	mutex_lock(&inst->mode_lock);
	inst->mode = MDEVMIG_MODE_PASSTHROUGH;
	WRITE_ONCE(inst->logging, false);
	mdevmig_zap_locked(inst);
	inst->bar2_mapping = NULL;
	bitmap_zero(inst->dirty, inst->nr_pages);
	mutex_unlock(&inst->mode_lock);
	mdevmig_mem_zero(inst);
}

/*
 * Protection of a user PTE for BAR2: writable or not, with the memory type the
 * backing needs (write-combining for a PCI BAR, cached for sim memory). Built from
 * the vma flags rather than vm_page_prot, which pfn_mkwrite makes read-only.
 */
static pgprot_t mdevmig_bar2_prot(struct mdevmig_dev *inst, struct vm_area_struct *vma,
				  bool writable)
{
	unsigned long flags = vma->vm_flags;
	pgprot_t prot = vm_get_page_prot(writable ? flags : flags & ~VM_SHARED);

	if (inst->parent->kind == MDEVMIG_PARENT_PCI)
		prot = pgprot_writecombine(prot);
	return prot;
}

/* Page of BAR2 a fault is for, or -1 if it is outside the instance's slice. */
static long mdevmig_fault_page(struct mdevmig_dev *inst, struct vm_fault *vmf)
{
	u64 base = mdevmig_region_offset(inst, VFIO_PCI_BAR2_REGION_INDEX) >> PAGE_SHIFT;

	if (vmf->pgoff < base || vmf->pgoff - base >= inst->nr_pages)
		return -1;
	return vmf->pgoff - base;
}

/*
 * Maps the rest of the aligned MDEVMIG_MAP_AHEAD block around @page, which the caller
 * has just mapped at @addr: clipped to the vma and the slice, @writable or read-only.
 * Pages already mapped keep their PTE (vmf_insert_pfn_prot() leaves a present one
 * alone). Best effort: it stops at the first error, the faulting page is mapped.
 */
static void mdevmig_map_ahead_locked(struct mdevmig_dev *inst, struct vm_area_struct *vma,
				     unsigned long addr, unsigned long page, bool writable)
{
	unsigned long first = round_down(page, MDEVMIG_MAP_AHEAD);
	unsigned long last = min(first + MDEVMIG_MAP_AHEAD, inst->nr_pages);
	pgprot_t prot = mdevmig_bar2_prot(inst, vma, writable);
	unsigned long p;

	lockdep_assert_held(&inst->mode_lock);
	addr &= PAGE_MASK;
	/* Clip to the vma: page p is at addr + (p - page) * PAGE_SIZE. */
	if (page - first > (addr - vma->vm_start) >> PAGE_SHIFT)
		first = page - ((addr - vma->vm_start) >> PAGE_SHIFT);
	last = min(last, page + ((vma->vm_end - addr) >> PAGE_SHIFT));
	for (p = first; p < last; p++) {
		vm_fault_t ret;

		if (p == page)
			continue;
		ret = vmf_insert_pfn_prot(vma, addr + (p - page) * PAGE_SIZE,
					  mdevmig_page_pfn(inst, p), prot);
		if (ret & VM_FAULT_ERROR)
			break;
	}
}

static vm_fault_t mdevmig_bar2_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mdevmig_dev *inst = vma->vm_private_data;
	long page = mdevmig_fault_page(inst, vmf);
	enum mdevmig_bar2_mode mode;
	vm_fault_t ret;
	bool writable;

	if (page < 0)
		return VM_FAULT_SIGBUS;

	mutex_lock(&inst->mode_lock);
	mode = mdevmig_effective_mode_locked(inst);
	if (mode == MDEVMIG_MODE_TRAPPED) {
		ret = VM_FAULT_SIGBUS;
		goto out_unlock;
	}
	/* Tracked: a read maps read-only, so the first write comes to pfn_mkwrite. */
	writable = mode == MDEVMIG_MODE_PASSTHROUGH || (vmf->flags & FAULT_FLAG_WRITE);
	if (mode == MDEVMIG_MODE_TRACKED && writable)
		set_bit(page, inst->dirty);
	ret = vmf_insert_pfn_prot(vma, vmf->address, mdevmig_page_pfn(inst, page),
				  mdevmig_bar2_prot(inst, vma, writable));
	/* Neighbours: writable in passthrough, read-only (so still tracked) otherwise. */
	if (!(ret & VM_FAULT_ERROR))
		mdevmig_map_ahead_locked(inst, vma, vmf->address, page,
					 mode == MDEVMIG_MODE_PASSTHROUGH);
out_unlock:
	mutex_unlock(&inst->mode_lock);
	return ret;
}

/* First write to a read-only PTE: in tracked mode this is where a page turns dirty. */
static vm_fault_t mdevmig_bar2_pfn_mkwrite(struct vm_fault *vmf)
{
	struct mdevmig_dev *inst = vmf->vma->vm_private_data;
	long page = mdevmig_fault_page(inst, vmf);
	vm_fault_t ret = 0;

	if (page < 0)
		return VM_FAULT_SIGBUS;
	mutex_lock(&inst->mode_lock);
	switch (mdevmig_effective_mode_locked(inst)) {
	case MDEVMIG_MODE_TRACKED:
		set_bit(page, inst->dirty);
		break;
	case MDEVMIG_MODE_TRAPPED:
		ret = VM_FAULT_SIGBUS;	/* zapped already; a stale fault */
		break;
	case MDEVMIG_MODE_PASSTHROUGH:
		break;
	}
	mutex_unlock(&inst->mode_lock);
	return ret;
}

static const struct vm_operations_struct mdevmig_bar2_vm_ops = {
	.fault = mdevmig_bar2_fault,
	.pfn_mkwrite = mdevmig_bar2_pfn_mkwrite,
};

int mdevmig_bar2_mmap(struct mdevmig_dev *inst, struct vm_area_struct *vma)
{
	u64 base = mdevmig_region_offset(inst, VFIO_PCI_BAR2_REGION_INDEX) >> PAGE_SHIFT;
	unsigned long npages = vma_pages(vma);
	int ret = 0;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff < base || vma->vm_pgoff - base >= inst->nr_pages ||
	    npages > inst->nr_pages - (vma->vm_pgoff - base))
		return -EINVAL;

	mutex_lock(&inst->mode_lock);
	if (inst->force_trapped) {
		ret = -EPERM;	/* the region advertises no mmap while forced trapped */
		goto out_unlock;
	}
	if (inst->bar2_mapping && inst->bar2_mapping != vma->vm_file->f_mapping) {
		ret = -EINVAL;
		goto out_unlock;
	}
	inst->bar2_mapping = vma->vm_file->f_mapping;
	mdevmig_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &mdevmig_bar2_vm_ops;
	vma->vm_private_data = inst;
out_unlock:
	mutex_unlock(&inst->mode_lock);
	return ret;
}

/*
 * Region read/write of BAR2, valid in every mode. User data goes through a bounce
 * page so no user access happens under mode_lock.
 */
ssize_t mdevmig_bar2_rw(struct mdevmig_dev *inst, char __user *ubuf, size_t count,
			u64 pos, bool write)
{
	size_t done = 0;
	void *bounce;

	if (pos >= inst->mem_size)
		return -EINVAL;
	if (!count)
		return 0;
	count = min_t(u64, count, inst->mem_size - pos);
	bounce = (void *)__get_free_page(GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;

	while (done < count) {
		u64 off = pos + done;
		size_t n = min_t(size_t, count - done, PAGE_SIZE - offset_in_page(off));

		if (write && copy_from_user(bounce, ubuf + done, n))
			break;
		mutex_lock(&inst->mode_lock);
		if (write) {
			memcpy(inst->mem + off, bounce, n);
			if (inst->logging)
				set_bit(off >> PAGE_SHIFT, inst->dirty);
		} else {
			memcpy(bounce, inst->mem + off, n);
		}
		mutex_unlock(&inst->mode_lock);
		if (!write && copy_to_user(ubuf + done, bounce, n))
			break;
		done += n;
	}
	free_page((unsigned long)bounce);
	return done ? done : -EFAULT;
}

/* ---- sysfs: /sys/bus/mdev/devices/<uuid>/mdevmig/ ----------------------------------- */

static struct mdevmig_dev *mdevmig_from_attr_dev(struct device *dev)
{
	return dev_get_drvdata(dev);
}

static ssize_t mode_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);
	ssize_t n;

	mutex_lock(&inst->mode_lock);
	n = sysfs_emit(buf, "%s\n", mdevmig_mode_name(mdevmig_effective_mode_locked(inst)));
	mutex_unlock(&inst->mode_lock);
	return n;
}

/* Switching by hand is a debugging and test aid; migration switches modes itself. */
static ssize_t mode_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t count)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);
	enum mdevmig_bar2_mode mode;
	ssize_t ret = count;

	if (sysfs_streq(buf, "passthrough"))
		mode = MDEVMIG_MODE_PASSTHROUGH;
	else if (sysfs_streq(buf, "tracked"))
		mode = MDEVMIG_MODE_TRACKED;
	else if (sysfs_streq(buf, "trapped"))
		mode = MDEVMIG_MODE_TRAPPED;
	else
		return -EINVAL;
	/* A migration owns the mode (and the dirty set) until it ends. */
	mutex_lock(&inst->mig_lock);
	if (inst->frontend == MDEVMIG_FE_NONE)
		mdevmig_set_mode(inst, mode, false);
	else
		ret = -EBUSY;
	mutex_unlock(&inst->mig_lock);
	return ret;
}
static DEVICE_ATTR_RW(mode);

static ssize_t force_trapped_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(mdevmig_from_attr_dev(dev)->force_trapped));
}

static ssize_t force_trapped_store(struct device *dev, struct device_attribute *attr,
				   const char *buf, size_t count)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);
	bool on;
	int ret = kstrtobool(buf, &on);

	if (ret)
		return ret;
	if (!on && inst->no_mmap)
		return -EPERM;	/* a PCI parent without pci_bar2_mmap=Y */
	mutex_lock(&inst->mode_lock);
	inst->force_trapped = on;
	mdevmig_zap_locked(inst);
	mutex_unlock(&inst->mode_lock);
	return count;
}
static DEVICE_ATTR_RW(force_trapped);

static ssize_t dirty_pages_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", mdevmig_dirty_count(mdevmig_from_attr_dev(dev)));
}

/* Writing "clear" drops the dirty set and re-arms tracking. */
static ssize_t dirty_pages_store(struct device *dev, struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);
	ssize_t ret = count;

	if (!sysfs_streq(buf, "clear"))
		return -EINVAL;
	mutex_lock(&inst->mig_lock);	/* a migration's dirty set is not ours to drop */
	if (inst->frontend == MDEVMIG_FE_NONE)
		mdevmig_dirty_harvest(inst, NULL);
	else
		ret = -EBUSY;
	mutex_unlock(&inst->mig_lock);
	return ret;
}
static DEVICE_ATTR_RW(dirty_pages);

/* Dirty pages as ranges, "0-3,7"; ends in ",..." when it does not fit one page. */
static ssize_t dirty_ranges_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);
	unsigned long start, end = 0;
	ssize_t n = 0;

	for_each_set_bitrange(start, end, inst->dirty, inst->nr_pages) {
		if (n > PAGE_SIZE - 64) {
			n += sysfs_emit_at(buf, n, ",...");
			break;
		}
		if (end - start == 1)
			n += sysfs_emit_at(buf, n, "%s%lu", n ? "," : "", start);
		else
			n += sysfs_emit_at(buf, n, "%s%lu-%lu", n ? "," : "", start, end - 1);
	}
	n += sysfs_emit_at(buf, n, "\n");
	return n;
}
static DEVICE_ATTR_RO(dirty_ranges);

static ssize_t memory_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct mdevmig_dev *inst = mdevmig_from_attr_dev(dev);

	return sysfs_emit(buf, "%s offset=0x%llx size=0x%llx\n", inst->parent->name,
			  inst->mem_offset, inst->mem_size);
}
static DEVICE_ATTR_RO(memory);

static struct attribute *mdevmig_mdev_attrs[] = {
	&dev_attr_mode.attr,
	&dev_attr_force_trapped.attr,
	&dev_attr_dirty_pages.attr,
	&dev_attr_dirty_ranges.attr,
	&dev_attr_memory.attr,
	&mdevmig_dev_attr_migration.attr,
	&mdevmig_dev_attr_engine_budget.attr,
	NULL,
};

static const struct attribute_group mdevmig_mdev_group = {
	.name = "mdevmig",
	.attrs = mdevmig_mdev_attrs,
};

const struct attribute_group *mdevmig_mdev_groups[] = {
	&mdevmig_mdev_group,
	NULL,
};
