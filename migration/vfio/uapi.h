// The VFIO uAPI as this client uses it: <linux/vfio.h> plus, in this one place, the
// definitions that kernels before 6.2 lack (PRE_COPY, VFIO_MIG_GET_PRECOPY_INFO,
// MIG_DATA_SIZE). Their values are ABI, fixed by the upstream header; defining them
// lets one binary use them on a newer kernel even when built against 6.1 headers.
#pragma once

#include <linux/vfio.h>
#include <sys/ioctl.h>

#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif

#ifndef VFIO_MIG_GET_PRECOPY_INFO
/* Issued on the data_fd in PRE_COPY/PRE_COPY_P2P (Linux 6.2+). */
struct vfio_precopy_info {
  __u32 argsz;
  __u32 flags;
  __aligned_u64 initial_bytes;
  __aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
/* GET: the device's estimated STOP_COPY data length (Linux 6.2+). */
struct vfio_device_feature_mig_data_size {
  __aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

static_assert(sizeof(struct vfio_precopy_info) == 24);
static_assert(sizeof(struct vfio_device_feature_mig_data_size) == 8);
