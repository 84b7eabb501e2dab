// SPDX-License-Identifier: GPL-2.0
/*
 * Parents: software (sim) functions backed by kernel memory, their mdev types, and the
 * slot allocator that keeps instances of one parent from overlapping.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/bitmap.h>
#include <linux/pci.h>
#include <linux/log2.h>
#include <linux/io.h>
#include <linux/kref.h>

#include "mdevmig.h"

/*
 * mdevmig_parents_lock is held only to look parents up and to list or unlist them,
 * never while the mdev core removes instances: that waits for their users to close
 * them (see mdevmig_request()), and must not block every other parent meanwhile.
 */
static LIST_HEAD(mdevmig_parents);
static DEFINE_MUTEX(mdevmig_parents_lock);	/* protects mdevmig_parents, sim_next_id */
static unsigned int sim_next_id;

/*
 * A parent's memory outlives its registration: it is released when the last of the
 * registration and its instances lets go (an instance's vfio_device may be released
 * after the parent was unregistered). A sim parent ends in put_device() of its
 * device, a PCI parent, whose BAR was given back at remove, in kfree().
 */
static void mdevmig_parent_release(struct kref *ref)
{
	struct mdevmig_parent *parent = container_of(ref, struct mdevmig_parent, ref);
	unsigned int i;

	if (parent->kind == MDEVMIG_PARENT_SIM) {
		put_device(&parent->sim_dev);
		return;
	}
	/*
	 * A PCI parent's types hold a reference on the PCI device, not on this memory, and
	 * the core's type release reads type->parent (in here) with no hook for us. The last
	 * type reference normally drops inside mdev_unregister_parent(), long before this;
	 * if one is still held, keep the memory (a bounded leak, said in the log) rather than let
	 * that release read freed memory.
	 */
	for (i = 0; i < MDEVMIG_NR_TYPES; i++) {
		if (kref_read(&parent->types[i].mtype.kobj.kref)) {
			/* parent->dev may be gone: the PCI device was removed before this */
			pr_warn(MDEVMIG_DRIVER_NAME ": %s: type %s still referenced at release; keeping the parent's memory\n",
				parent->name, parent->types[i].sysfs_name);
			return;
		}
	}
	kfree(parent);
}

static void mdevmig_parent_put(struct mdevmig_parent *parent)
{
	kref_put(&parent->ref, mdevmig_parent_release);
}

static struct mdevmig_type *to_mdevmig_type(struct mdev_type *mtype)
{
	return container_of(mtype, struct mdevmig_type, mtype);
}

/* Slots a slice of this type spans. */
static unsigned int mdevmig_type_slots(const struct mdevmig_type *t)
{
	return MDEVMIG_MAX_SLICES / t->divisor;
}

static bool mdevmig_slots_free_locked(struct mdevmig_parent *parent, unsigned int first,
				      unsigned int nr)
{
	unsigned long mask = GENMASK(first + nr - 1, first);

	lockdep_assert_held(&parent->slots_lock);
	return !(parent->slots & mask);
}

int mdevmig_slots_claim(struct mdevmig_parent *parent, unsigned int nr_slots,
			unsigned int *first_slot)
{
	unsigned int first;
	int ret = -ENOSPC;

	mutex_lock(&parent->slots_lock);
	for (first = 0; first < MDEVMIG_MAX_SLICES; first += nr_slots) {
		if (mdevmig_slots_free_locked(parent, first, nr_slots)) {
			parent->slots |= GENMASK(first + nr_slots - 1, first);
			*first_slot = first;
			kref_get(&parent->ref);	/* the instance's, put by slots_release */
			ret = 0;
			break;
		}
	}
	mutex_unlock(&parent->slots_lock);
	return ret;
}

void mdevmig_slots_release(struct mdevmig_parent *parent, unsigned int first_slot,
			   unsigned int nr_slots)
{
	mutex_lock(&parent->slots_lock);
	WARN_ON((parent->slots & GENMASK(first_slot + nr_slots - 1, first_slot)) !=
		GENMASK(first_slot + nr_slots - 1, first_slot));
	parent->slots &= ~GENMASK(first_slot + nr_slots - 1, first_slot);
	mutex_unlock(&parent->slots_lock);
	mdevmig_parent_put(parent);
}

static unsigned int mdevmig_get_available(struct mdev_type *mtype)
{
	struct mdevmig_type *t = to_mdevmig_type(mtype);
	struct mdevmig_parent *parent = t->parent;
	unsigned int nr = mdevmig_type_slots(t), first, avail = 0;

	mutex_lock(&parent->slots_lock);
	for (first = 0; first < MDEVMIG_MAX_SLICES; first += nr)
		if (mdevmig_slots_free_locked(parent, first, nr))
			avail++;
	mutex_unlock(&parent->slots_lock);
	return avail;
}

static ssize_t mdevmig_show_description(struct mdev_type *mtype, char *buf)
{
	struct mdevmig_type *t = to_mdevmig_type(mtype);
	struct mdevmig_parent *parent = t->parent;

	return sysfs_emit(buf,
			  "mdevmig device, %llu MiB of device memory (1/%u of %s %s), BAR0 registers + DMA engine, migratable\n",
			  (parent->mem_size / t->divisor) >> 20, t->divisor,
			  parent->kind == MDEVMIG_PARENT_SIM ? "sim parent" : "PCI function",
			  parent->name);
}

struct mdev_driver mdevmig_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = MDEVMIG_DRIVER_NAME,
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = mdevmig_mdev_groups,
	},
	.probe = mdevmig_mdev_probe,
	.remove = mdevmig_mdev_remove,
	.get_available = mdevmig_get_available,
	.show_description = mdevmig_show_description,
};

static void mdevmig_parent_init_types(struct mdevmig_parent *parent)
{
	static const char * const fraction[MDEVMIG_NR_TYPES] = {
		"full", "half", "quarter", "eighth"
	};
	unsigned int i;

	for (i = 0; i < MDEVMIG_NR_TYPES; i++) {
		struct mdevmig_type *t = &parent->types[i];

		t->parent = parent;
		t->divisor = 1u << i;
		strscpy(t->sysfs_name, fraction[i], sizeof(t->sysfs_name));
		snprintf(t->pretty_name, sizeof(t->pretty_name), "mdevmig %lluM",
			 (parent->mem_size / t->divisor) >> 20);
		t->mtype.sysfs_name = t->sysfs_name;
		t->mtype.pretty_name = t->pretty_name;
		parent->type_ptrs[i] = &t->mtype;
	}
}

static void mdevmig_sim_release(struct device *dev)
{
	struct mdevmig_parent *parent = container_of(dev, struct mdevmig_parent, sim_dev);

	vfree(parent->mem_va);
	kfree(parent);
}

/* Registers @parent with the mdev core and lists it. */
static int mdevmig_parent_register_locked(struct mdevmig_parent *parent)
{
	int ret;

	lockdep_assert_held(&mdevmig_parents_lock);
	mdevmig_parent_init_types(parent);
	ret = mdev_register_parent(&parent->mparent, parent->dev, &mdevmig_mdev_driver,
				   parent->type_ptrs, MDEVMIG_NR_TYPES);
	if (ret)
		return ret;
	list_add_tail(&parent->node, &mdevmig_parents);
	return 0;
}

/* Unlists @parent: no lookup finds it any more, so only its remover unregisters it. */
static void mdevmig_parent_unlist_locked(struct mdevmig_parent *parent)
{
	lockdep_assert_held(&mdevmig_parents_lock);
	list_del_init(&parent->node);
}

static bool mdevmig_parent_busy(struct mdevmig_parent *parent)
{
	bool busy;

	mutex_lock(&parent->slots_lock);
	busy = parent->slots != 0;
	mutex_unlock(&parent->slots_lock);
	return busy;
}

/* Creates, registers and lists a sim parent with @mem_mb MiB of memory. */
static int mdevmig_sim_add(unsigned int mem_mb)
{
	struct mdevmig_parent *parent;
	u64 size = (u64)mem_mb << 20;
	int ret;

	/* A power of two, so every slice is a valid BAR size; at most 4 GiB. */
	if (!mem_mb || !is_power_of_2(mem_mb) || mem_mb > 4096)
		return -EINVAL;

	parent = kzalloc(sizeof(*parent), GFP_KERNEL);
	if (!parent)
		return -ENOMEM;
	parent->kind = MDEVMIG_PARENT_SIM;
	kref_init(&parent->ref);
	parent->mem_size = size;
	mutex_init(&parent->slots_lock);
	INIT_LIST_HEAD(&parent->node);
	parent->mem_va = vmalloc_user(size);	/* zeroed, page-granular, mappable */
	if (!parent->mem_va) {
		kfree(parent);
		return -ENOMEM;
	}

	device_initialize(&parent->sim_dev);
	parent->sim_dev.class = mdevmig_class;
	parent->sim_dev.release = mdevmig_sim_release;
	parent->dev = &parent->sim_dev;
	/* From here on the parent is freed by put_device(). */

	mutex_lock(&mdevmig_parents_lock);
	snprintf(parent->name, sizeof(parent->name), "mdevmig_sim%u", sim_next_id++);
	ret = dev_set_name(&parent->sim_dev, "%s", parent->name);
	if (ret)
		goto out_put_dev;
	ret = device_add(&parent->sim_dev);
	if (ret)
		goto out_put_dev;
	ret = mdevmig_parent_register_locked(parent);
	if (ret)
		goto out_del_dev;
	mutex_unlock(&mdevmig_parents_lock);
	dev_info(parent->dev, "sim parent with %u MiB\n", mem_mb);
	return 0;

out_del_dev:
	device_del(&parent->sim_dev);
out_put_dev:
	mutex_unlock(&mdevmig_parents_lock);
	put_device(&parent->sim_dev);
	return ret;
}

/*
 * Removes an unlisted sim parent. The mdev core removes any instance first, asking
 * its user to close it and waiting until it has; no global lock is held meanwhile.
 */
static void mdevmig_sim_remove(struct mdevmig_parent *parent)
{
	mdev_unregister_parent(&parent->mparent);
	device_del(&parent->sim_dev);
	mdevmig_parent_put(parent);
}

/* /sys/class/mdevmig/sim_add: write a size in MiB to create a sim parent. */
static ssize_t sim_add_store(MDEVMIG_CLASS_CONST struct class *class,
			     MDEVMIG_CLASS_CONST struct class_attribute *attr, const char *buf,
			     size_t count)
{
	unsigned int mem_mb;
	int ret = kstrtouint(buf, 0, &mem_mb);

	if (ret)
		return ret;
	ret = mdevmig_sim_add(mem_mb);
	return ret ? ret : count;
}
static CLASS_ATTR_WO(sim_add);

/* /sys/class/mdevmig/sim_remove: write a sim parent's name; refused while it has instances. */
static ssize_t sim_remove_store(MDEVMIG_CLASS_CONST struct class *class,
				MDEVMIG_CLASS_CONST struct class_attribute *attr, const char *buf,
				size_t count)
{
	struct mdevmig_parent *parent, *found = NULL;
	int ret = -ENODEV;

	mutex_lock(&mdevmig_parents_lock);
	list_for_each_entry(parent, &mdevmig_parents, node) {
		if (parent->kind != MDEVMIG_PARENT_SIM || !sysfs_streq(buf, parent->name))
			continue;
		if (mdevmig_parent_busy(parent)) {
			ret = -EBUSY;
		} else {
			mdevmig_parent_unlist_locked(parent);
			found = parent;
			ret = 0;
		}
		break;
	}
	mutex_unlock(&mdevmig_parents_lock);
	/* An instance created since the check is removed with the parent. */
	if (found)
		mdevmig_sim_remove(found);
	return ret ? ret : count;
}
static CLASS_ATTR_WO(sim_remove);

/* ---- PCI parents: any function with a memory BAR, bound by driver_override ---------- */

/* The largest memory BAR that can hold MDEVMIG_MAX_SLICES pages, or -ENODEV. */
static int mdevmig_pci_pick_bar(struct pci_dev *pdev)
{
	int bar, best = -ENODEV;

	for (bar = 0; bar < PCI_STD_NUM_BARS; bar++) {
		if (!(pci_resource_flags(pdev, bar) & IORESOURCE_MEM) ||
		    pci_resource_len(pdev, bar) < MDEVMIG_MAX_SLICES * PAGE_SIZE)
			continue;
		if (best < 0 || pci_resource_len(pdev, bar) > pci_resource_len(pdev, best))
			best = bar;
	}
	return best;
}

static int mdevmig_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct mdevmig_parent *parent;
	int bar, ret;

	bar = mdevmig_pci_pick_bar(pdev);
	if (bar < 0) {
		dev_err(&pdev->dev, "no memory BAR of at least %lu KiB\n",
			MDEVMIG_MAX_SLICES * PAGE_SIZE / 1024);
		return bar;
	}
	parent = kzalloc(sizeof(*parent), GFP_KERNEL);
	if (!parent)
		return -ENOMEM;
	parent->kind = MDEVMIG_PARENT_PCI;
	kref_init(&parent->ref);
	parent->dev = &pdev->dev;
	mutex_init(&parent->slots_lock);
	INIT_LIST_HEAD(&parent->node);
	strscpy(parent->name, pci_name(pdev), sizeof(parent->name));

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto out_free_parent;
	ret = pci_request_region(pdev, bar, MDEVMIG_DRIVER_NAME);
	if (ret)
		goto out_disable;
	parent->mem_phys = pci_resource_start(pdev, bar);
	parent->mem_size = rounddown_pow_of_two(pci_resource_len(pdev, bar));
	parent->mem_va = memremap(parent->mem_phys, parent->mem_size, MEMREMAP_WC);
	if (!parent->mem_va) {
		ret = -ENOMEM;
		goto out_release_region;
	}
	parent->pci_bar = bar;
	pci_set_drvdata(pdev, parent);

	mutex_lock(&mdevmig_parents_lock);
	ret = mdevmig_parent_register_locked(parent);
	mutex_unlock(&mdevmig_parents_lock);
	if (ret)
		goto out_unmap;
	dev_info(&pdev->dev, "PCI parent: BAR%d, %llu MiB of device memory\n", bar,
		 parent->mem_size >> 20);
	return 0;

out_unmap:
	memunmap(parent->mem_va);
out_release_region:
	pci_release_region(pdev, bar);
out_disable:
	pci_disable_device(pdev);
out_free_parent:
	kfree(parent);
	return ret;
}

/*
 * Instances of the parent are removed first: each user is asked to close its instance
 * and waited for, without the global lock. The BAR is given back here; the parent
 * itself goes with the last instance reference.
 */
static void mdevmig_pci_remove(struct pci_dev *pdev)
{
	struct mdevmig_parent *parent = pci_get_drvdata(pdev);

	mutex_lock(&mdevmig_parents_lock);
	mdevmig_parent_unlist_locked(parent);
	mutex_unlock(&mdevmig_parents_lock);
	mdev_unregister_parent(&parent->mparent);
	memunmap(parent->mem_va);
	parent->mem_va = NULL;
	pci_release_region(pdev, parent->pci_bar);
	pci_disable_device(pdev);
	mdevmig_parent_put(parent);
}

/* No ID table: the administrator binds functions with driver_override. */
static struct pci_driver mdevmig_pci_driver = {
	.name = MDEVMIG_DRIVER_NAME,
	.id_table = NULL,
	.probe = mdevmig_pci_probe,
	.remove = mdevmig_pci_remove,
};

static void mdevmig_sims_remove_all(void);

int mdevmig_parents_init(unsigned int nr_sim, unsigned int sim_mem_mb)
{
	unsigned int i;
	int ret;

	ret = class_create_file(mdevmig_class, &class_attr_sim_add);
	if (ret)
		return ret;
	ret = class_create_file(mdevmig_class, &class_attr_sim_remove);
	if (ret)
		goto out_remove_add;
	for (i = 0; i < nr_sim; i++) {
		ret = mdevmig_sim_add(sim_mem_mb);
		if (ret)
			goto out_remove_sims;
	}
	ret = pci_register_driver(&mdevmig_pci_driver);
	if (ret)
		goto out_remove_sims;
	return 0;

out_remove_sims:
	mdevmig_sims_remove_all();
	class_remove_file(mdevmig_class, &class_attr_sim_remove);
out_remove_add:
	class_remove_file(mdevmig_class, &class_attr_sim_add);
	return ret;
}

static void mdevmig_sims_remove_all(void)
{
	struct mdevmig_parent *parent, *tmp;
	LIST_HEAD(sims);

	mutex_lock(&mdevmig_parents_lock);
	list_for_each_entry_safe(parent, tmp, &mdevmig_parents, node)
		if (parent->kind == MDEVMIG_PARENT_SIM)
			list_move_tail(&parent->node, &sims);
	mutex_unlock(&mdevmig_parents_lock);
	list_for_each_entry_safe(parent, tmp, &sims, node) {
		list_del_init(&parent->node);
		mdevmig_sim_remove(parent);
	}
}

/*
 * The class files go first: removing them waits for a sim_add or sim_remove in
 * progress, and none can start afterwards, so no parent appears behind our back.
 */
void mdevmig_parents_exit(void)
{
	class_remove_file(mdevmig_class, &class_attr_sim_remove);
	class_remove_file(mdevmig_class, &class_attr_sim_add);
	pci_unregister_driver(&mdevmig_pci_driver);
	mdevmig_sims_remove_all();
}
