/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel version differences, in one place. Everything else in kmod/ is written
 * against these helpers, never against LINUX_VERSION_CODE directly.
 */
#ifndef MDEVMIG_COMPAT_H
#define MDEVMIG_COMPAT_H

#include <linux/version.h>
#include <linux/device.h>
#include <linux/vfio.h>
#include <linux/eventfd.h>
#include <linux/mm.h>

/* class_create() lost its owner argument in 6.4. */
static inline struct class *mdevmig_class_create(const char *name)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	return class_create(name);
#else
	return class_create(THIS_MODULE, name);
#endif
}

/*
 * Class attribute callbacks take a const class and a const attribute in 6.12 and
 * neither in 6.1 (both verified by building); the class became const in 6.4, and the
 * attribute is assumed to have changed with it (kernels 6.4-6.11 not built here).
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define MDEVMIG_CLASS_CONST const
#else
#define MDEVMIG_CLASS_CONST
#endif

/*
 * In 6.1 ->release must end with vfio_free_device(); from 6.2 the core frees the
 * device after ->release and vfio_free_device() is gone.
 */
static inline void mdevmig_vfio_release_tail(struct vfio_device *vdev)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
	vfio_free_device(vdev);
#endif
}

/*
 * From 6.2 the core checks for iommufd ops when CONFIG_IOMMUFD is enabled; with it
 * disabled these expand to NULL. 6.1 has no such fields.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define MDEVMIG_VFIO_IOMMUFD_OPS					\
	.bind_iommufd	= vfio_iommufd_emulated_bind,			\
	.unbind_iommufd	= vfio_iommufd_emulated_unbind,			\
	.attach_ioas	= vfio_iommufd_emulated_attach_ioas,
#else
#define MDEVMIG_VFIO_IOMMUFD_OPS
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define MDEVMIG_VFIO_IOMMUFD_DETACH_OP					\
	.detach_ioas	= vfio_iommufd_emulated_detach_ioas,
#else
#define MDEVMIG_VFIO_IOMMUFD_DETACH_OP
#endif

/* eventfd_signal() lost its count argument in 6.8. */
static inline void mdevmig_eventfd_signal(struct eventfd_ctx *ctx)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}

/* vm_flags became read-only outside the mm core in 6.3. */
static inline void mdevmig_vm_flags_set(struct vm_area_struct *vma, unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/*
 * wp_shared_mapping_range() and clean_record_shared_mapping_range() (mm/
 * mapping_dirty_helpers.c) exist only with CONFIG_MAPPING_DIRTY_HELPERS, a hidden option
 * selected by a few drivers (vmwgfx on x86). Debian's 6.1 and 6.12 amd64 kernels build it
 * in and export both (GPL). Without them, tracking is re-armed by zapping the mapping.
 */
#if IS_BUILTIN(CONFIG_MAPPING_DIRTY_HELPERS)
#define MDEVMIG_HAVE_WP_MAPPING 1
#else
#define MDEVMIG_HAVE_WP_MAPPING 0
#endif

/*
 * v2 pre-copy (PRE_COPY/PRE_COPY_P2P states, VFIO_MIG_GET_PRECOPY_INFO) and
 * migration_get_data_size() arrived in 6.2; the uAPI header defines the flag only
 * where the kernel has them. Elsewhere the uAPI names are defined here with the values
 * of later kernels, so the pre-copy code compiles everywhere; only whether the device
 * advertises PRE_COPY (MDEVMIG_MIGRATION_PRE_COPY, and with it the ioctl) and the ops
 * member (MDEVMIG_MIG_OPS_GET_DATA_SIZE) depend on the kernel. Without the flag the
 * core never composes an arc into a PRE_COPY state, so that code is never reached.
 */
#ifdef VFIO_MIGRATION_PRE_COPY
#define MDEVMIG_MIGRATION_PRE_COPY	VFIO_MIGRATION_PRE_COPY
#define MDEVMIG_MIG_OPS_GET_DATA_SIZE(fn)	.migration_get_data_size = (fn),
#else
#define MDEVMIG_MIGRATION_PRE_COPY	0
#define MDEVMIG_MIG_OPS_GET_DATA_SIZE(fn)

#define VFIO_MIGRATION_PRE_COPY		(1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY	6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P	7

struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};

#define VFIO_MIG_GET_PRECOPY_INFO	_IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

/*
 * iova_bitmap_set() is part of the vfio core before 6.8; from then on it is built
 * only with CONFIG_IOMMUFD_DRIVER and is an empty stub otherwise.
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0) || IS_ENABLED(CONFIG_IOMMUFD_DRIVER)
#define MDEVMIG_HAVE_IOVA_BITMAP 1
#else
#define MDEVMIG_HAVE_IOVA_BITMAP 0
#endif

/*
 * Where struct vfio_device_ops has get_region_info_caps (seen in 7.2, not in 6.12), the
 * core answers VFIO_DEVICE_GET_REGION_INFO itself and never passes it to ->ioctl.
 * Kbuild detects the member in the headers it builds against.
 */
#ifdef MDEVMIG_KBUILD_REGION_INFO_CAPS
#define MDEVMIG_HAVE_REGION_INFO_CAPS 1
#else
#define MDEVMIG_HAVE_REGION_INFO_CAPS 0
#endif

#endif /* MDEVMIG_COMPAT_H */
