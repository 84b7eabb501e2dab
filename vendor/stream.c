// SPDX-License-Identifier: GPL-2.0
/*
 * State stream writers: each emits whole records into the caller's buffer.
 * Format: <linux/mdevmig.h>, "State stream".
 */
#include "stream.h"
#include "model_priv.h"
#include "stream_priv.h"

#define HDR_SIZE	sizeof(struct mdevmig_rec_hdr)

/* Writes the header of a record whose payload is already at @rec + HDR_SIZE. */
static void mdevmig_rec_seal(uint8_t *rec, uint32_t tag, size_t len)
{
	const uint8_t *payload = rec + HDR_SIZE;

	mdevmig_put_le32(rec + offsetof(struct mdevmig_rec_hdr, tag), tag);
	mdevmig_put_le32(rec + offsetof(struct mdevmig_rec_hdr, flags), MDEVMIG_REC_F_MANDATORY);
	mdevmig_put_le64(rec + offsetof(struct mdevmig_rec_hdr, length), len);
	mdevmig_put_le64(rec + offsetof(struct mdevmig_rec_hdr, hash), mdevmig_xxh64(payload, len));
}

long mdevmig_stream_put_compat(const struct mdevmig_model *m, void *buf, size_t size)
{
	const size_t len = sizeof(struct mdevmig_rec_compat);
	uint8_t *p = (uint8_t *)buf + HDR_SIZE;

	if (size < HDR_SIZE + len)
		return -ENOSPC;
	memset(p, 0, len);
	REC_PUT32(p, compat, stream_version, MDEVMIG_STREAM_VERSION);
	REC_PUT32(p, compat, model_version, MDEVMIG_MODEL_VERSION);
	REC_PUT32(p, compat, type_id, m->type_id);
	REC_PUT32(p, compat, page_size, MDEVMIG_PAGE_SIZE);
	REC_PUT64(p, compat, mem_size, m->mem_size);
	mdevmig_rec_seal(buf, MDEVMIG_REC_COMPAT, len);
	return (long)(HDR_SIZE + len);
}

long mdevmig_stream_put_pages(const struct mdevmig_model *m, uint64_t first_page,
			      uint32_t count, void *buf, size_t size)
{
	uint64_t npages = m->mem_size >> MDEVMIG_PAGE_SHIFT;
	const size_t len = sizeof(struct mdevmig_rec_pages) + (size_t)count * MDEVMIG_PAGE_SIZE;
	uint8_t *p = (uint8_t *)buf + HDR_SIZE;

	if (!count || count > MDEVMIG_REC_PAGES_MAX || first_page > npages ||
	    count > npages - first_page)
		return -EINVAL;
	if (size < HDR_SIZE + len)
		return -ENOSPC;
	memset(p, 0, sizeof(struct mdevmig_rec_pages));
	REC_PUT64(p, pages, first_page, first_page);
	REC_PUT32(p, pages, count, count);
	memcpy(p + sizeof(struct mdevmig_rec_pages), m->mem + (first_page << MDEVMIG_PAGE_SHIFT),
	       (size_t)count * MDEVMIG_PAGE_SIZE);
	mdevmig_rec_seal(buf, MDEVMIG_REC_PAGES, len);
	return (long)(HDR_SIZE + len);
}

static void mdevmig_put_config(uint8_t *p, const struct mdevmig_model_cfgspace *c)
{
	memset(p, 0, sizeof(struct mdevmig_rec_config));
	REC_PUT16(p, config, command, c->command);
	REC_PUT8(p, config, cache_line, c->cache_line);
	REC_PUT8(p, config, intr_line, c->intr_line);
	REC_PUT32(p, config, bar0, c->bar0);
	REC_PUT64(p, config, bar2, c->bar2);
	REC_PUT16(p, config, msi_ctrl, c->msi_ctrl);
	REC_PUT16(p, config, msi_data, c->msi_data);
	REC_PUT32(p, config, msi_mask, c->msi_mask);
	REC_PUT64(p, config, msi_addr, c->msi_addr);
}

static void mdevmig_put_regs(uint8_t *p, const struct mdevmig_model_regs *r)
{
	unsigned int i;

	memset(p, 0, sizeof(struct mdevmig_rec_regs));
	REC_PUT32(p, regs, ctrl, r->ctrl);
	REC_PUT32(p, regs, int_status, r->int_status);
	REC_PUT32(p, regs, int_mask, r->int_mask);
	for (i = 0; i < MDEVMIG_NR_SCRATCH; i++)
		mdevmig_put_le32(p + REC_OFF(regs, scratch) + 4 * i, r->scratch[i]);
	REC_PUT64(p, regs, ring_base, r->ring_base);
	REC_PUT32(p, regs, ring_size, r->ring_size);
	REC_PUT32(p, regs, ring_head, r->ring_head);
	REC_PUT32(p, regs, ring_tail, r->ring_tail);
	REC_PUT32(p, regs, seq, r->seq);
	REC_PUT32(p, regs, err_desc, r->err_desc);
	REC_PUT32(p, regs, err_dma, r->err_dma);
	REC_PUT32(p, regs, err_ring, r->err_ring);
}

static void mdevmig_put_engine(uint8_t *p, const struct mdevmig_model_engine *e)
{
	unsigned int i;

	memset(p, 0, sizeof(struct mdevmig_rec_engine));
	REC_PUT32(p, engine, flags, e->active ? MDEVMIG_ENGINE_F_ACTIVE : 0);
	mdevmig_desc_encode(p + offsetof(struct mdevmig_rec_engine, desc), &e->desc);
	REC_PUT64(p, engine, progress, e->progress);
	REC_PUT64(p, engine, xxh_total_len, e->xxh.total_len);
	for (i = 0; i < 4; i++)
		mdevmig_put_le64(p + REC_OFF(engine, xxh_v) + 8 * i, e->xxh.v[i]);
	memcpy(p + offsetof(struct mdevmig_rec_engine, xxh_mem), e->xxh.mem, sizeof(e->xxh.mem));
	REC_PUT32(p, engine, xxh_memsize, e->xxh.memsize);
}

static void mdevmig_put_irq(uint8_t *p, const struct mdevmig_model *m)
{
	memset(p, 0, sizeof(struct mdevmig_rec_irq));
	REC_PUT32(p, irq, intx_asserted, m->intx_level ? 1 : 0);
	REC_PUT32(p, irq, msi_pending, m->cfg.msi_pending);
}

size_t mdevmig_stream_state_size(void)
{
	return 4 * HDR_SIZE + sizeof(struct mdevmig_rec_config) + sizeof(struct mdevmig_rec_regs) +
	       sizeof(struct mdevmig_rec_engine) + sizeof(struct mdevmig_rec_irq);
}

long mdevmig_stream_put_state(const struct mdevmig_model *m, void *buf, size_t size)
{
	uint8_t *rec = (uint8_t *)buf;

	if (size < mdevmig_stream_state_size())
		return -ENOSPC;

	mdevmig_put_config(rec + HDR_SIZE, &m->cfg);
	mdevmig_rec_seal(rec, MDEVMIG_REC_CONFIG, sizeof(struct mdevmig_rec_config));
	rec += HDR_SIZE + sizeof(struct mdevmig_rec_config);

	mdevmig_put_regs(rec + HDR_SIZE, &m->regs);
	mdevmig_rec_seal(rec, MDEVMIG_REC_REGS, sizeof(struct mdevmig_rec_regs));
	rec += HDR_SIZE + sizeof(struct mdevmig_rec_regs);

	mdevmig_put_engine(rec + HDR_SIZE, &m->eng);
	mdevmig_rec_seal(rec, MDEVMIG_REC_ENGINE, sizeof(struct mdevmig_rec_engine));
	rec += HDR_SIZE + sizeof(struct mdevmig_rec_engine);

	mdevmig_put_irq(rec + HDR_SIZE, m);
	mdevmig_rec_seal(rec, MDEVMIG_REC_IRQ, sizeof(struct mdevmig_rec_irq));
	rec += HDR_SIZE + sizeof(struct mdevmig_rec_irq);

	return (long)(rec - (uint8_t *)buf);
}

long mdevmig_stream_put_end(void *buf, size_t size)
{
	if (size < HDR_SIZE)
		return -ENOSPC;
	mdevmig_rec_seal(buf, MDEVMIG_REC_END, 0);
	return (long)HDR_SIZE;
}
