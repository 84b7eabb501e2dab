// SPDX-License-Identifier: GPL-2.0
/*
 * PCI configuration space: 256 bytes computed dword by dword from a few state
 * fields, so read-only and unimplemented bytes cannot be changed by construction.
 * Layout and semantics: <linux/mdevmig.h>, "PCI configuration space".
 */
#include "model_priv.h"

#define MDEVMIG_MSI_OFF(x)	(MDEVMIG_CFG_MSI_CAP + (x))

void mdevmig_cfg_reset(struct mdevmig_model *m)
{
	memset(&m->cfg, 0, sizeof(m->cfg));
}

static uint16_t mdevmig_cfg_status(const struct mdevmig_model *m)
{
	uint16_t status = MDEVMIG_PCI_STATUS_CAP_LIST;

	if (!(m->cfg.msi_ctrl & MDEVMIG_MSI_CTRL_ENABLE) &&
	    (m->regs.int_status & ~m->regs.int_mask))
		status |= MDEVMIG_PCI_STATUS_INTERRUPT;
	return status;
}

static uint32_t mdevmig_cfg_dword(const struct mdevmig_model *m, uint32_t off)
{
	const struct mdevmig_model_cfgspace *c = &m->cfg;
	uint32_t msi_ctrl;

	switch (off) {
	case 0x00:
		return MDEVMIG_PCI_VENDOR_ID | ((uint32_t)MDEVMIG_PCI_DEVICE_ID << 16);
	case MDEVMIG_PCI_COMMAND:
		return c->command | ((uint32_t)mdevmig_cfg_status(m) << 16);
	case MDEVMIG_PCI_REVISION_CLASS:
		return MDEVMIG_PCI_REVISION | ((uint32_t)MDEVMIG_PCI_CLASS << 8);
	case MDEVMIG_PCI_CACHE_LINE:
		return c->cache_line;	/* latency 0, header type 0, BIST 0 */
	case MDEVMIG_PCI_BAR0:
		return c->bar0;		/* 32-bit, non-prefetchable: flag bits 0 */
	case MDEVMIG_PCI_BAR2:
		return (uint32_t)c->bar2 | MDEVMIG_PCI_BAR_MEM_64 | MDEVMIG_PCI_BAR_MEM_PREFETCH;
	case MDEVMIG_PCI_BAR3:
		return (uint32_t)(c->bar2 >> 32);
	case MDEVMIG_PCI_SUBSYSTEM:
		return MDEVMIG_PCI_SUBSYS_VENDOR_ID | ((uint32_t)MDEVMIG_PCI_SUBSYS_ID << 16);
	case MDEVMIG_PCI_CAP_PTR:
		return MDEVMIG_CFG_MSI_CAP;
	case MDEVMIG_PCI_INTERRUPT:
		return c->intr_line | (MDEVMIG_PCI_INTX_PIN_A << 8);
	case MDEVMIG_MSI_OFF(0x00):
		msi_ctrl = c->msi_ctrl | (MDEVMIG_MSI_LOG2_MAX << MDEVMIG_MSI_CTRL_MMC_SHIFT) |
			   MDEVMIG_MSI_CTRL_64BIT | MDEVMIG_MSI_CTRL_PVM;
		return MDEVMIG_PCI_CAP_ID_MSI | (msi_ctrl << 16);	/* next pointer 0 */
	case MDEVMIG_MSI_OFF(0x04):
		return (uint32_t)c->msi_addr;
	case MDEVMIG_MSI_OFF(0x08):
		return (uint32_t)(c->msi_addr >> 32);
	case MDEVMIG_MSI_OFF(0x0c):
		return c->msi_data;
	case MDEVMIG_MSI_OFF(0x10):
		return c->msi_mask;
	case MDEVMIG_MSI_OFF(0x14):
		return c->msi_pending;
	default:
		return 0;
	}
}

static void mdevmig_cfg_write_command(struct mdevmig_model *m, uint32_t val, uint32_t be)
{
	uint16_t old = m->cfg.command;
	uint16_t changed;

	/* The status half (bytes 2-3) has no write-1-to-clear bits this device sets. */
	m->cfg.command = (uint16_t)(mdevmig_merge32(old, val, be & 0xffff) &
				    MDEVMIG_PCI_CMD_WRITABLE);
	changed = old ^ m->cfg.command;
	if (changed & MDEVMIG_PCI_CMD_INTX_DISABLE)
		mdevmig_intx_update(m);
	if ((changed & MDEVMIG_PCI_CMD_MASTER) && (m->cfg.command & MDEVMIG_PCI_CMD_MASTER))
		mdevmig_kick_if_pending(m);
}

static void mdevmig_cfg_write_msi_ctrl(struct mdevmig_model *m, uint32_t val, uint32_t be)
{
	uint16_t old = m->cfg.msi_ctrl;
	uint32_t ctrl = mdevmig_merge32((uint32_t)old << 16, val, be) >> 16;
	uint32_t mme = (ctrl & MDEVMIG_MSI_CTRL_MME_MASK) >> MDEVMIG_MSI_CTRL_MME_SHIFT;

	if (mme > MDEVMIG_MSI_LOG2_MAX)
		mme = MDEVMIG_MSI_LOG2_MAX;
	ctrl = (ctrl & MDEVMIG_MSI_CTRL_ENABLE) | (mme << MDEVMIG_MSI_CTRL_MME_SHIFT);
	m->cfg.msi_ctrl = (uint16_t)ctrl;
	if ((old ^ ctrl) & MDEVMIG_MSI_CTRL_ENABLE)
		mdevmig_intx_update(m);
}

static void mdevmig_cfg_write_dword(struct mdevmig_model *m, uint32_t off, uint32_t val,
				    uint32_t be)
{
	struct mdevmig_model_cfgspace *c = &m->cfg;
	uint64_t bar2_mask = ~(m->bar2_size - 1);
	uint32_t old;

	switch (off) {
	case MDEVMIG_PCI_COMMAND:
		mdevmig_cfg_write_command(m, val, be);
		break;
	case MDEVMIG_PCI_CACHE_LINE:
		c->cache_line = (uint8_t)mdevmig_merge32(c->cache_line, val, be & 0xff);
		break;
	case MDEVMIG_PCI_BAR0:
		c->bar0 = mdevmig_merge32(c->bar0, val, be) & ~(uint32_t)(MDEVMIG_REGS_SIZE - 1);
		break;
	case MDEVMIG_PCI_BAR2:
		old = (uint32_t)c->bar2;
		c->bar2 = ((c->bar2 & ~0xffffffffull) | mdevmig_merge32(old, val, be)) & bar2_mask;
		break;
	case MDEVMIG_PCI_BAR3:
		old = (uint32_t)(c->bar2 >> 32);
		c->bar2 = (((uint64_t)mdevmig_merge32(old, val, be) << 32) |
			   (c->bar2 & 0xffffffffull)) & bar2_mask;
		break;
	case MDEVMIG_PCI_INTERRUPT:
		c->intr_line = (uint8_t)mdevmig_merge32(c->intr_line, val, be & 0xff);
		break;
	case MDEVMIG_MSI_OFF(0x00):
		if (be & 0xffff0000u)
			mdevmig_cfg_write_msi_ctrl(m, val, be & 0xffff0000u);
		break;
	case MDEVMIG_MSI_OFF(0x04):
		old = (uint32_t)c->msi_addr;
		c->msi_addr = (c->msi_addr & ~0xffffffffull) |
			      (mdevmig_merge32(old, val, be) & ~3u);
		break;
	case MDEVMIG_MSI_OFF(0x08):
		old = (uint32_t)(c->msi_addr >> 32);
		c->msi_addr = ((uint64_t)mdevmig_merge32(old, val, be) << 32) |
			      (c->msi_addr & 0xffffffffull);
		break;
	case MDEVMIG_MSI_OFF(0x0c):
		c->msi_data = (uint16_t)mdevmig_merge32(c->msi_data, val, be & 0xffff);
		break;
	case MDEVMIG_MSI_OFF(0x10):
		old = c->msi_mask;
		c->msi_mask = mdevmig_merge32(old, val, be) & MDEVMIG_MSI_VECTOR_MASK;
		if (old & ~c->msi_mask)
			mdevmig_msi_unmasked(m, old & ~c->msi_mask);
		break;
	default:
		break;		/* read-only or unimplemented */
	}
}

static int mdevmig_cfg_check(uint32_t off, const void *buf, uint32_t len)
{
	if (off > MDEVMIG_CFG_SIZE || len > MDEVMIG_CFG_SIZE - off || (len && !buf))
		return -EINVAL;
	return 0;
}

/*
 * Splits an access into dword pieces with byte enables: a write from @in when it is
 * set, else a read into @out. Reads have no side effects.
 */
static int mdevmig_cfg_access(struct mdevmig_model *m, uint32_t off, const uint8_t *in,
			      uint8_t *out, uint32_t len)
{
	int ret = mdevmig_cfg_check(off, in ? (const void *)in : out, len);

	if (ret)
		return ret;
	while (len) {
		uint32_t shift = off & 3;
		uint32_t n = 4 - shift < len ? 4 - shift : len;
		uint32_t v = in ? 0 : mdevmig_cfg_dword(m, off - shift) >> (8 * shift);
		uint32_t be = 0;
		uint32_t i;

		for (i = 0; i < n; i++) {
			if (in) {
				v |= (uint32_t)*in++ << (8 * (shift + i));
				be |= 0xffu << (8 * (shift + i));
			} else {
				*out++ = (uint8_t)(v >> (8 * i));
			}
		}
		if (in)
			mdevmig_cfg_write_dword(m, off - shift, v, be);
		off += n;
		len -= n;
	}
	return 0;
}

int mdevmig_model_cfg_read(struct mdevmig_model *m, uint32_t off, void *buf, uint32_t len)
{
	return mdevmig_cfg_access(m, off, NULL, (uint8_t *)buf, len);
}

int mdevmig_model_cfg_write(struct mdevmig_model *m, uint32_t off, const void *buf,
			    uint32_t len)
{
	return mdevmig_cfg_access(m, off, (const uint8_t *)buf, NULL, len);
}

bool mdevmig_cfg_state_valid(const struct mdevmig_model *m,
			     const struct mdevmig_model_cfgspace *cfg)
{
	uint32_t mme = (cfg->msi_ctrl & MDEVMIG_MSI_CTRL_MME_MASK) >> MDEVMIG_MSI_CTRL_MME_SHIFT;

	if (cfg->command & ~MDEVMIG_PCI_CMD_WRITABLE)
		return false;
	if ((cfg->bar0 & (MDEVMIG_REGS_SIZE - 1)) || (cfg->bar2 & (m->bar2_size - 1)))
		return false;
	if ((cfg->msi_ctrl & ~MDEVMIG_MSI_CTRL_WRITABLE) || mme > MDEVMIG_MSI_LOG2_MAX)
		return false;
	if (cfg->msi_addr & 3)
		return false;
	if (cfg->msi_mask & ~MDEVMIG_MSI_VECTOR_MASK)
		return false;
	/* A vector only latches its pending bit while masked; unmasking sends it. */
	return !(cfg->msi_pending & ~cfg->msi_mask);
}
