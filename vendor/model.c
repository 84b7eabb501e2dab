// SPDX-License-Identifier: GPL-2.0
/*
 * The model's life cycle, interrupt delivery and what the host asks about it.
 */
#include "model_priv.h"

int mdevmig_model_init(struct mdevmig_model *m, const struct mdevmig_model_config *cfg,
		       const struct mdevmig_model_ops *ops, void *host)
{
	uint64_t bar2 = MDEVMIG_PAGE_SIZE;

	if (!m || !cfg || !ops)
		return -EINVAL;
	if (!ops->dma_read || !ops->dma_write || !ops->msi || !ops->intx || !ops->kick ||
	    !ops->mem_dirty)
		return -EINVAL;
	if (!cfg->mem || !cfg->mem_size || cfg->mem_size > MDEVMIG_MEM_MAX_SIZE ||
	    (cfg->mem_size & (MDEVMIG_PAGE_SIZE - 1)))
		return -EINVAL;

	while (bar2 < cfg->mem_size)
		bar2 <<= 1;

	memset(m, 0, sizeof(*m));
	m->ops = ops;
	m->host = host;
	m->mem = cfg->mem;
	m->mem_size = cfg->mem_size;
	m->bar2_size = bar2;
	m->type_id = cfg->type_id;
	mdevmig_cfg_reset(m);
	mdevmig_regs_reset(m);
	mdevmig_engine_reset(m);
	m->intx_level = false;
	return 0;
}

void mdevmig_model_reset(struct mdevmig_model *m)
{
	mdevmig_cfg_reset(m);
	mdevmig_regs_reset(m);
	mdevmig_engine_reset(m);
	mdevmig_intx_update(m);
}

static bool mdevmig_msi_enabled(const struct mdevmig_model_cfgspace *cfg)
{
	return cfg->msi_ctrl & MDEVMIG_MSI_CTRL_ENABLE;
}

static unsigned int mdevmig_msi_nvec(const struct mdevmig_model_cfgspace *cfg)
{
	return 1u << ((cfg->msi_ctrl & MDEVMIG_MSI_CTRL_MME_MASK) >> MDEVMIG_MSI_CTRL_MME_SHIFT);
}

/* Sends the vectors in @vectors now, or latches those masked in the capability. */
static void __mdevmig_msi_send(struct mdevmig_model *m, uint32_t vectors)
{
	unsigned int nvec = mdevmig_msi_nvec(&m->cfg);
	unsigned int v;

	if (!(m->cfg.command & MDEVMIG_PCI_CMD_MASTER))
		return;		/* a message is a memory write: dropped */
	for (v = 0; v < MDEVMIG_MSI_MAX_VECTORS; v++) {
		if (!(vectors & (1u << v)))
			continue;
		if (m->cfg.msi_mask & (1u << v)) {
			m->cfg.msi_pending |= 1u << v;
			continue;
		}
		m->ops->msi(m->host, v < nvec ? v : 0);
	}
}

/* One message per distinct vector that the causes in @causes map to. */
static void __mdevmig_msi_causes(struct mdevmig_model *m, uint32_t causes)
{
	unsigned int nvec = mdevmig_msi_nvec(&m->cfg);
	uint32_t vectors = 0;
	unsigned int i;

	for (i = 0; i < MDEVMIG_MSI_MAX_VECTORS; i++)
		if (causes & (1u << i))
			vectors |= 1u << (i < nvec ? i : 0);
	if (vectors)
		__mdevmig_msi_send(m, vectors);
}

bool mdevmig_intx_level(const struct mdevmig_model_cfgspace *cfg,
			const struct mdevmig_model_regs *regs)
{
	if (mdevmig_msi_enabled(cfg) || (cfg->command & MDEVMIG_PCI_CMD_INTX_DISABLE))
		return false;
	return (regs->int_status & ~regs->int_mask) != 0;
}

void mdevmig_intx_update(struct mdevmig_model *m)
{
	bool level = mdevmig_intx_level(&m->cfg, &m->regs);

	if (level == m->intx_level)
		return;
	m->intx_level = level;
	m->ops->intx(m->host, level);
}

void mdevmig_irq_raise(struct mdevmig_model *m, uint32_t causes)
{
	causes &= MDEVMIG_INT_ALL;
	m->regs.int_status |= causes;
	if (mdevmig_msi_enabled(&m->cfg))
		__mdevmig_msi_causes(m, causes & ~m->regs.int_mask);
	mdevmig_intx_update(m);
}

void mdevmig_irq_unmasked(struct mdevmig_model *m, uint32_t causes)
{
	if (mdevmig_msi_enabled(&m->cfg))
		__mdevmig_msi_causes(m, causes & m->regs.int_status);
	mdevmig_intx_update(m);
}

void mdevmig_msi_unmasked(struct mdevmig_model *m, uint32_t vectors)
{
	uint32_t pending = m->cfg.msi_pending & vectors;

	m->cfg.msi_pending &= ~pending;
	if (pending && mdevmig_msi_enabled(&m->cfg))
		__mdevmig_msi_send(m, pending);
}

bool mdevmig_model_work_pending(const struct mdevmig_model *m)
{
	const struct mdevmig_model_regs *r = &m->regs;

	if (!(r->ctrl & MDEVMIG_CTRL_ENABLE) || !(m->cfg.command & MDEVMIG_PCI_CMD_MASTER))
		return false;
	return r->ring_size && (m->eng.active || r->ring_head != r->ring_tail);
}

void mdevmig_kick_if_pending(struct mdevmig_model *m)
{
	if (mdevmig_model_work_pending(m))
		m->ops->kick(m->host);
}

void mdevmig_model_get_irq_info(const struct mdevmig_model *m,
				struct mdevmig_model_irq_info *info)
{
	info->msi_enabled = mdevmig_msi_enabled(&m->cfg);
	info->msi_vectors = mdevmig_msi_nvec(&m->cfg);
	info->msi_max_vectors = MDEVMIG_MSI_MAX_VECTORS;
	info->intx_asserted = m->intx_level;
}

uint64_t mdevmig_model_bar_size(const struct mdevmig_model *m, unsigned int bar)
{
	if (bar == 0)
		return MDEVMIG_REGS_SIZE;
	if (bar == 2)
		return m->bar2_size;
	return 0;
}
