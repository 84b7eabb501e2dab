// SPDX-License-Identifier: GPL-2.0
/*
 * BAR0: the register file. Register map and semantics: <linux/mdevmig.h>, "BAR0".
 * Every access is reduced to 32-bit register reads and writes with byte enables.
 */
#include "model_priv.h"

void mdevmig_regs_reset(struct mdevmig_model *m)
{
	memset(&m->regs, 0, sizeof(m->regs));
}

static bool mdevmig_is_scratch(uint32_t off)
{
	return off >= MDEVMIG_REG_SCRATCH(0) && off < MDEVMIG_REG_SCRATCH(MDEVMIG_NR_SCRATCH);
}

static uint32_t mdevmig_reg_status(const struct mdevmig_model *m)
{
	const struct mdevmig_model_regs *r = &m->regs;
	uint32_t status = 0;

	if (r->ctrl & MDEVMIG_CTRL_ENABLE)
		status |= MDEVMIG_STATUS_ENABLED;
	if (r->ring_size && (m->eng.active || r->ring_head != r->ring_tail)) {
		status |= MDEVMIG_STATUS_BUSY;
		if (!mdevmig_model_work_pending(m))
			status |= MDEVMIG_STATUS_BLOCKED;
	}
	if (m->eng.active)
		status |= MDEVMIG_STATUS_ACTIVE;
	return status;
}

static uint32_t mdevmig_reg_read(const struct mdevmig_model *m, uint32_t off)
{
	const struct mdevmig_model_regs *r = &m->regs;

	if (mdevmig_is_scratch(off))
		return r->scratch[(off - MDEVMIG_REG_SCRATCH(0)) / 4];

	switch (off) {
	case MDEVMIG_REG_ID:
		return MDEVMIG_ID_MAGIC;
	case MDEVMIG_REG_VERSION:
		return MDEVMIG_MODEL_VERSION;
	case MDEVMIG_REG_CAPS:
		return MDEVMIG_DMA_OPS_MASK;
	case MDEVMIG_REG_TYPE_ID:
		return m->type_id;
	case MDEVMIG_REG_MEM_SIZE_LO:
		return (uint32_t)m->mem_size;
	case MDEVMIG_REG_MEM_SIZE_HI:
		return (uint32_t)(m->mem_size >> 32);
	case MDEVMIG_REG_RING_MAX:
		return MDEVMIG_RING_MAX_ENTRIES;
	case MDEVMIG_REG_MAX_LEN:
		return MDEVMIG_DMA_MAX_LEN;
	case MDEVMIG_REG_CTRL:
		return r->ctrl;
	case MDEVMIG_REG_STATUS:
		return mdevmig_reg_status(m);
	case MDEVMIG_REG_INT_STATUS:
		return r->int_status;
	case MDEVMIG_REG_INT_MASK:
		return r->int_mask;
	case MDEVMIG_REG_RING_BASE_LO:
		return (uint32_t)r->ring_base;
	case MDEVMIG_REG_RING_BASE_HI:
		return (uint32_t)(r->ring_base >> 32);
	case MDEVMIG_REG_RING_SIZE:
		return r->ring_size;
	case MDEVMIG_REG_RING_HEAD:
		return r->ring_head;
	case MDEVMIG_REG_RING_TAIL:
		return r->ring_tail;
	case MDEVMIG_REG_SEQ:
		return r->seq;
	case MDEVMIG_REG_ERR_DESC:
		return r->err_desc;
	case MDEVMIG_REG_ERR_DMA:
		return r->err_dma;
	case MDEVMIG_REG_ERR_RING:
		return r->err_ring;
	default:
		return 0;	/* INT_SET and unimplemented offsets */
	}
}

/* Soft reset (CTRL.RESET): BAR0 and the engine; config space keeps its state. */
static void mdevmig_soft_reset(struct mdevmig_model *m)
{
	mdevmig_regs_reset(m);
	mdevmig_engine_reset(m);
	mdevmig_intx_update(m);
}

/* Any write to the ring geometry drops queued and in-flight work. */
static void mdevmig_ring_reprogrammed(struct mdevmig_model *m)
{
	m->regs.ring_head = 0;
	m->regs.ring_tail = 0;
	mdevmig_engine_reset(m);
}

static void mdevmig_ring_error(struct mdevmig_model *m)
{
	m->regs.err_ring++;
	mdevmig_irq_raise(m, MDEVMIG_INT_RING);
}

static void mdevmig_reg_write_ctrl(struct mdevmig_model *m, uint32_t val, uint32_t be)
{
	uint32_t old = m->regs.ctrl;
	uint32_t ctrl = mdevmig_merge32(old, val, be);

	if (ctrl & MDEVMIG_CTRL_RESET) {
		mdevmig_soft_reset(m);
		return;
	}
	m->regs.ctrl = ctrl & MDEVMIG_CTRL_ENABLE;
	if (!(old & MDEVMIG_CTRL_ENABLE) && (m->regs.ctrl & MDEVMIG_CTRL_ENABLE))
		mdevmig_kick_if_pending(m);
}

static void mdevmig_reg_write_ring(struct mdevmig_model *m, uint32_t off, uint32_t val,
				   uint32_t be)
{
	struct mdevmig_model_regs *r = &m->regs;
	uint32_t v;

	switch (off) {
	case MDEVMIG_REG_RING_BASE_LO:
		v = mdevmig_merge32((uint32_t)r->ring_base, val, be) & ~(MDEVMIG_DESC_SIZE - 1);
		r->ring_base = (r->ring_base & ~0xffffffffull) | v;
		mdevmig_ring_reprogrammed(m);
		break;
	case MDEVMIG_REG_RING_BASE_HI:
		v = mdevmig_merge32((uint32_t)(r->ring_base >> 32), val, be);
		r->ring_base = ((uint64_t)v << 32) | (r->ring_base & 0xffffffffull);
		mdevmig_ring_reprogrammed(m);
		break;
	case MDEVMIG_REG_RING_SIZE:
		v = mdevmig_merge32(r->ring_size, val, be);
		mdevmig_ring_reprogrammed(m);
		if (v && (!mdevmig_is_pow2(v) || v > MDEVMIG_RING_MAX_ENTRIES)) {
			r->ring_size = 0;
			mdevmig_ring_error(m);
			break;
		}
		r->ring_size = v;
		break;
	case MDEVMIG_REG_RING_TAIL:
		if (!r->ring_size) {
			mdevmig_ring_error(m);
			break;
		}
		r->ring_tail = mdevmig_merge32(r->ring_tail, val, be) & (r->ring_size - 1);
		mdevmig_kick_if_pending(m);
		break;
	}
}

static void mdevmig_reg_write(struct mdevmig_model *m, uint32_t off, uint32_t val, uint32_t be)
{
	struct mdevmig_model_regs *r = &m->regs;
	uint32_t old;

	if (mdevmig_is_scratch(off)) {
		uint32_t *s = &r->scratch[(off - MDEVMIG_REG_SCRATCH(0)) / 4];

		*s = mdevmig_merge32(*s, val, be);
		return;
	}

	switch (off) {
	case MDEVMIG_REG_CTRL:
		mdevmig_reg_write_ctrl(m, val, be);
		break;
	case MDEVMIG_REG_INT_STATUS:
		r->int_status &= ~(val & be);
		mdevmig_intx_update(m);
		break;
	case MDEVMIG_REG_INT_MASK:
		old = r->int_mask;
		r->int_mask = mdevmig_merge32(old, val, be) & MDEVMIG_INT_ALL;
		mdevmig_irq_unmasked(m, old & ~r->int_mask);
		break;
	case MDEVMIG_REG_INT_SET:
		if (val & be & MDEVMIG_INT_ALL)
			mdevmig_irq_raise(m, val & be);
		break;
	case MDEVMIG_REG_RING_BASE_LO:
	case MDEVMIG_REG_RING_BASE_HI:
	case MDEVMIG_REG_RING_SIZE:
	case MDEVMIG_REG_RING_TAIL:
		mdevmig_reg_write_ring(m, off, val, be);
		break;
	default:
		break;		/* read-only or unimplemented */
	}
}

static int mdevmig_mmio_check(uint32_t off, const void *buf, uint32_t len)
{
	if (!buf || (len != 1 && len != 2 && len != 4 && len != 8))
		return -EINVAL;
	if ((off & (len - 1)) || off >= MDEVMIG_REGS_SIZE)
		return -EINVAL;		/* aligned and below the size: ends inside too */
	return 0;
}

int mdevmig_model_mmio_read(struct mdevmig_model *m, uint32_t off, void *buf, uint32_t len)
{
	uint32_t shift, v;
	int ret = mdevmig_mmio_check(off, buf, len);

	if (ret)
		return ret;
	if (len == 8) {
		mdevmig_put_le32(buf, mdevmig_reg_read(m, off));
		mdevmig_put_le32((uint8_t *)buf + 4, mdevmig_reg_read(m, off + 4));
		return 0;
	}
	shift = 8 * (off & 3);
	v = mdevmig_reg_read(m, off & ~3u) >> shift;
	if (len == 4)
		mdevmig_put_le32(buf, v);
	else if (len == 2)
		mdevmig_put_le16(buf, (uint16_t)v);
	else
		*(uint8_t *)buf = (uint8_t)v;
	return 0;
}

int mdevmig_model_mmio_write(struct mdevmig_model *m, uint32_t off, const void *buf,
			     uint32_t len)
{
	uint32_t shift, val, be;
	int ret = mdevmig_mmio_check(off, buf, len);

	if (ret)
		return ret;
	if (len == 8) {
		mdevmig_reg_write(m, off, mdevmig_get_le32(buf), 0xffffffffu);
		mdevmig_reg_write(m, off + 4, mdevmig_get_le32((const uint8_t *)buf + 4),
				  0xffffffffu);
		return 0;
	}
	shift = 8 * (off & 3);
	if (len == 4) {
		val = mdevmig_get_le32(buf);
		be = 0xffffffffu;
	} else if (len == 2) {
		val = mdevmig_get_le16(buf);
		be = 0xffffu;
	} else {
		val = *(const uint8_t *)buf;
		be = 0xffu;
	}
	mdevmig_reg_write(m, off & ~3u, val << shift, be << shift);
	return 0;
}

bool mdevmig_regs_state_valid(const struct mdevmig_model_regs *regs)
{
	if (regs->ctrl & ~MDEVMIG_CTRL_ENABLE)
		return false;
	if ((regs->int_status | regs->int_mask) & ~MDEVMIG_INT_ALL)
		return false;
	if (regs->ring_base & (MDEVMIG_DESC_SIZE - 1))
		return false;
	if (!regs->ring_size)
		return !regs->ring_head && !regs->ring_tail;
	return mdevmig_is_pow2(regs->ring_size) && regs->ring_size <= MDEVMIG_RING_MAX_ENTRIES &&
	       regs->ring_head < regs->ring_size && regs->ring_tail < regs->ring_size;
}
