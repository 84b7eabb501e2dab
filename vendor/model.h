/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mdevmig device model: the virtual PCI function of DESIGN.md §2 as portable C.
 *
 * The guest-visible contract (config space, BAR0 registers, descriptors, completions,
 * interrupts) is documented in <linux/mdevmig.h>; this header is the host's side:
 * how a host (the kernel module, the userspace simulator, a fuzzer) embeds a model,
 * forwards guest accesses to it and lets its DMA engine run.
 *
 * Concurrency: none inside. The host serializes every call on one model (the module
 * holds the instance mutex, the engine runs from a work item under it). Callbacks are
 * invoked synchronously from within the call that caused them and must not call back
 * into the model.
 */
#ifndef MDEVMIG_MODEL_H
#define MDEVMIG_MODEL_H

#include "port.h"
#include <linux/mdevmig.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the model needs from its host. Every callback is mandatory. */
struct mdevmig_model_ops {
	/*
	 * Copy guest memory at @iova into @buf / @buf into guest memory at @iova,
	 * through the instance's IOMMU view. Returns 0, or -errno (-EFAULT: not mapped)
	 * in which case the model treats the whole access as failed; on a failed read
	 * @buf may hold anything. The model never passes a range that wraps past 2^64,
	 * nor @len > MDEVMIG_DMA_STEP_BYTES.
	 */
	int (*dma_read)(void *host, uint64_t iova, void *buf, size_t len);
	int (*dma_write)(void *host, uint64_t iova, const void *buf, size_t len);
	/* Send MSI message @vector (< mdevmig_model_get_irq_info().msi_vectors): an edge. */
	void (*msi)(void *host, unsigned int vector);
	/* The INTx line changed level (only called on a change). */
	void (*intx)(void *host, bool asserted);
	/*
	 * The engine has runnable work (mdevmig_model_work_pending() is true): the host
	 * should call mdevmig_model_run() soon. May be called more than once for the same
	 * work. Called under whatever lock the host holds around the model call.
	 */
	void (*kick)(void *host);
	/* The engine wrote device memory [offset, offset + len) (for dirty tracking). */
	void (*mem_dirty)(void *host, uint64_t offset, uint64_t len);
};

/* Instance geometry, fixed at init. */
struct mdevmig_model_config {
	uint8_t *mem;		/* device memory, mem_size bytes, owned by the host */
	uint64_t mem_size;	/* multiple of MDEVMIG_PAGE_SIZE, 0 < size <= MEM_MAX_SIZE */
	uint32_t type_id;	/* the mdev type; part of the migration compat check */
};

/* Interrupt configuration the host exposes through VFIO_DEVICE_GET_IRQ_INFO & co. */
struct mdevmig_model_irq_info {
	bool msi_enabled;		/* MSI enable bit of the capability */
	unsigned int msi_vectors;	/* vectors enabled (1 << multiple message enable) */
	unsigned int msi_max_vectors;	/* MDEVMIG_MSI_MAX_VECTORS */
	bool intx_asserted;		/* current INTx level */
};

/* ----- Internal state. Public only so that a host can embed the model. ----- */

/* Config space fields that hold state; the rest is computed on read. */
struct mdevmig_model_cfgspace {
	uint16_t command;
	uint8_t cache_line;
	uint8_t intr_line;
	uint32_t bar0;
	uint64_t bar2;
	uint16_t msi_ctrl;	/* enable and multiple message enable bits only */
	uint16_t msi_data;
	uint32_t msi_mask;
	uint32_t msi_pending;
	uint64_t msi_addr;
};

struct mdevmig_model_regs {
	uint32_t ctrl;
	uint32_t int_status;
	uint32_t int_mask;
	uint32_t scratch[MDEVMIG_NR_SCRATCH];
	uint64_t ring_base;
	uint32_t ring_size;
	uint32_t ring_head;
	uint32_t ring_tail;
	uint32_t seq;
	uint32_t err_desc;
	uint32_t err_dma;
	uint32_t err_ring;
};

struct mdevmig_model_engine {
	bool active;			/* desc is in flight (it is the one at ring_head) */
	struct mdevmig_dma_desc desc;	/* fields in CPU byte order */
	uint64_t progress;		/* bytes of desc done */
	struct mdevmig_xxh64_state xxh;	/* HASH only */
};

/* Guest→guest copies go through this much host memory per dma_read/dma_write. */
#define MDEVMIG_MODEL_BOUNCE_SIZE	4096

struct mdevmig_model {
	/* Binding to the host, fixed at init; not part of the saved state. */
	const struct mdevmig_model_ops *ops;
	void *host;
	uint8_t *mem;
	uint64_t mem_size;
	uint64_t bar2_size;		/* power of two >= mem_size */
	uint32_t type_id;

	/* Device state: what the state stream carries. */
	struct mdevmig_model_cfgspace cfg;
	struct mdevmig_model_regs regs;
	struct mdevmig_model_engine eng;
	bool intx_level;		/* last level reported through ops->intx */

	uint8_t bounce[MDEVMIG_MODEL_BOUNCE_SIZE];	/* scratch, no state */
};

/*
 * Binds @m to its host and resets it. @ops and @host must outlive @m; @cfg is
 * copied. Returns 0 or -EINVAL (missing callback or memory, bad size).
 * No callback is invoked.
 */
int mdevmig_model_init(struct mdevmig_model *m, const struct mdevmig_model_config *cfg,
		       const struct mdevmig_model_ops *ops, void *host);

/*
 * Function-level reset: config space, registers, engine and interrupt state return
 * to their reset values; queued and in-flight work is dropped. Device memory is
 * untouched. Deasserts INTx through ops->intx if it was asserted.
 */
void mdevmig_model_reset(struct mdevmig_model *m);

/* Config space: any @off/@len with off + len <= MDEVMIG_CFG_SIZE; 0 or -EINVAL. */
int mdevmig_model_cfg_read(struct mdevmig_model *m, uint32_t off, void *buf, uint32_t len);
int mdevmig_model_cfg_write(struct mdevmig_model *m, uint32_t off, const void *buf,
			    uint32_t len);

/*
 * BAR0: @len 1, 2, 4 or 8, @off naturally aligned and within MDEVMIG_REGS_SIZE;
 * 0 or -EINVAL. @buf holds the little-endian register bytes.
 */
int mdevmig_model_mmio_read(struct mdevmig_model *m, uint32_t off, void *buf, uint32_t len);
int mdevmig_model_mmio_write(struct mdevmig_model *m, uint32_t off, const void *buf,
			     uint32_t len);

/* The engine has work it can do now (enabled, bus master on, descriptors queued). */
bool mdevmig_model_work_pending(const struct mdevmig_model *m);

/*
 * Runs the engine for at most @max_steps steps (each at most one descriptor fetch and
 * MDEVMIG_DMA_STEP_BYTES of its data). Returns 1 if work remains, 0 if idle or
 * blocked. The state between two calls is complete: it can be saved at any time.
 */
int mdevmig_model_run(struct mdevmig_model *m, unsigned int max_steps);

/* Interrupt configuration and INTx level, for the host's IRQ plumbing. */
void mdevmig_model_get_irq_info(const struct mdevmig_model *m,
				struct mdevmig_model_irq_info *info);

/*
 * Descriptors and completions in guest byte order (MDEVMIG_DESC_SIZE / _CMPL_SIZE
 * bytes at @raw), for hosts and tests that play the guest driver.
 */
#define MDEVMIG_DESC_SIZE	64u
#define MDEVMIG_CMPL_SIZE	32u
void mdevmig_desc_encode(uint8_t *raw, const struct mdevmig_dma_desc *d);
void mdevmig_desc_decode(struct mdevmig_dma_desc *d, const uint8_t *raw);
void mdevmig_cmpl_encode(uint8_t *raw, const struct mdevmig_dma_cmpl *c);
void mdevmig_cmpl_decode(struct mdevmig_dma_cmpl *c, const uint8_t *raw);

/* Size of BAR @bar in bytes (0 for BARs the device does not implement). */
uint64_t mdevmig_model_bar_size(const struct mdevmig_model *m, unsigned int bar);

#ifdef __cplusplus
}
#endif

#endif /* MDEVMIG_MODEL_H */
