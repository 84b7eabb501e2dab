/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private to vendor/: helpers shared by the model's files, split by concern:
 *   model.c   init, reset, interrupt delivery, host queries
 *   config.c  PCI config space
 *   regs.c    BAR0 registers
 *   engine.c  the DMA engine
 *   stream.c  state stream writers
 *   loader.c  state stream loader
 * Every function takes the model the host serializes calls on (see model.h).
 */
#ifndef MDEVMIG_MODEL_PRIV_H
#define MDEVMIG_MODEL_PRIV_H

#include "model.h"

/* Standard PCI config space layout (PCI Local Bus 3.0, header type 0). */
#define MDEVMIG_PCI_COMMAND		0x04
#define MDEVMIG_PCI_CMD_MEMORY		0x0002
#define MDEVMIG_PCI_CMD_MASTER		0x0004
#define MDEVMIG_PCI_CMD_PARITY		0x0040
#define MDEVMIG_PCI_CMD_SERR		0x0100
#define MDEVMIG_PCI_CMD_INTX_DISABLE	0x0400
#define MDEVMIG_PCI_CMD_WRITABLE	(MDEVMIG_PCI_CMD_MEMORY | MDEVMIG_PCI_CMD_MASTER | \
					 MDEVMIG_PCI_CMD_PARITY | MDEVMIG_PCI_CMD_SERR | \
					 MDEVMIG_PCI_CMD_INTX_DISABLE)
#define MDEVMIG_PCI_STATUS_INTERRUPT	0x0008
#define MDEVMIG_PCI_STATUS_CAP_LIST	0x0010
#define MDEVMIG_PCI_REVISION_CLASS	0x08
#define MDEVMIG_PCI_CACHE_LINE		0x0c
#define MDEVMIG_PCI_BAR0		0x10
#define MDEVMIG_PCI_BAR2		0x18
#define MDEVMIG_PCI_BAR3		0x1c
#define MDEVMIG_PCI_BAR_MEM_64		0x4
#define MDEVMIG_PCI_BAR_MEM_PREFETCH	0x8
#define MDEVMIG_PCI_SUBSYSTEM		0x2c
#define MDEVMIG_PCI_CAP_PTR		0x34
#define MDEVMIG_PCI_INTERRUPT		0x3c
#define MDEVMIG_PCI_INTX_PIN_A		1
#define MDEVMIG_PCI_CAP_ID_MSI		0x05

/* MSI capability fields, relative to MDEVMIG_CFG_MSI_CAP. */
#define MDEVMIG_MSI_CTRL_ENABLE		0x0001
#define MDEVMIG_MSI_CTRL_MMC_SHIFT	1
#define MDEVMIG_MSI_CTRL_MME_SHIFT	4
#define MDEVMIG_MSI_CTRL_MME_MASK	0x0070
#define MDEVMIG_MSI_CTRL_64BIT		0x0080
#define MDEVMIG_MSI_CTRL_PVM		0x0100
#define MDEVMIG_MSI_CTRL_WRITABLE	(MDEVMIG_MSI_CTRL_ENABLE | MDEVMIG_MSI_CTRL_MME_MASK)
#define MDEVMIG_MSI_LOG2_MAX		2	/* log2(MDEVMIG_MSI_MAX_VECTORS) */
#define MDEVMIG_MSI_VECTOR_MASK		((1u << MDEVMIG_MSI_MAX_VECTORS) - 1)

_Static_assert((1u << MDEVMIG_MSI_LOG2_MAX) == MDEVMIG_MSI_MAX_VECTORS,
	       "MSI vector count must match its log2");
_Static_assert(sizeof(struct mdevmig_dma_desc) == MDEVMIG_DESC_SIZE, "descriptor size");
_Static_assert(sizeof(struct mdevmig_dma_cmpl) == MDEVMIG_CMPL_SIZE, "completion size");

/* Opcodes the engine implements, as MDEVMIG_REG_CAPS shows them. */
#define MDEVMIG_DMA_OPS_MASK		(((1u << (MDEVMIG_DMA_OP_MAX + 1)) - 1) & ~1u)


/* Merge @val into @old where @be has bits set (byte enables expanded to bits). */
static inline uint32_t mdevmig_merge32(uint32_t old, uint32_t val, uint32_t be)
{
	return (old & ~be) | (val & be);
}

static inline bool mdevmig_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* model.c */
void mdevmig_irq_raise(struct mdevmig_model *m, uint32_t causes);
void mdevmig_irq_unmasked(struct mdevmig_model *m, uint32_t causes);
void mdevmig_msi_unmasked(struct mdevmig_model *m, uint32_t vectors);
void mdevmig_intx_update(struct mdevmig_model *m);
bool mdevmig_intx_level(const struct mdevmig_model_cfgspace *cfg,
			const struct mdevmig_model_regs *regs);
void mdevmig_kick_if_pending(struct mdevmig_model *m);

/* config.c */
void mdevmig_cfg_reset(struct mdevmig_model *m);
bool mdevmig_cfg_state_valid(const struct mdevmig_model *m,
			     const struct mdevmig_model_cfgspace *cfg);

/* regs.c */
void mdevmig_regs_reset(struct mdevmig_model *m);
bool mdevmig_regs_state_valid(const struct mdevmig_model_regs *regs);

/* engine.c */
void mdevmig_engine_reset(struct mdevmig_model *m);
uint32_t mdevmig_desc_check(const struct mdevmig_model *m, const struct mdevmig_dma_desc *d);
bool mdevmig_engine_state_valid(const struct mdevmig_model *m,
				const struct mdevmig_model_regs *regs,
				const struct mdevmig_model_engine *eng);

#endif /* MDEVMIG_MODEL_PRIV_H */
