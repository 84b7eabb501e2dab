// SPDX-License-Identifier: GPL-2.0
/*
 * State stream loader. The input is hostile: a header is checked before its
 * payload is accepted, a payload is checksummed before anything of it is used, every
 * offset and length is range-checked before use, and nothing is allocated (the one
 * record being received lives in the caller's buffer). Pages go to device memory when
 * their record completes; the device state records are staged and applied together at
 * END, after checks that they describe a state the device could be in. Any failure
 * is sticky and leaves the model reset.
 */
#include "stream.h"
#include "model_priv.h"
#include "records.h"
#include "stream_priv.h"

#define HDR_SIZE	sizeof(struct mdevmig_rec_hdr)

/* Known record types, by their number in the tag (records.h). */
enum {
	REC_COMPAT = MDEVMIG_REC_TYPE_COMPAT,
	REC_CONFIG = MDEVMIG_REC_TYPE_CONFIG,
	REC_REGS = MDEVMIG_REC_TYPE_REGS,
	REC_ENGINE = MDEVMIG_REC_TYPE_ENGINE,
	REC_IRQ = MDEVMIG_REC_TYPE_IRQ,
	REC_PAGES = MDEVMIG_REC_TYPE_PAGES,
	REC_END = MDEVMIG_REC_TYPE_END,
};

#define SEEN(type)	(1u << (type))
#define SEEN_STATE	(SEEN(REC_CONFIG) | SEEN(REC_REGS) | SEEN(REC_ENGINE) | SEEN(REC_IRQ))

static const char *const mdevmig_load_reasons[MDEVMIG_LOAD_NR_REASONS] = {
	[MDEVMIG_LOAD_OK] = "ok",
	[MDEVMIG_LOAD_BAD_MAGIC] = "record tag has a bad magic",
	[MDEVMIG_LOAD_BAD_FLAGS] = "record flags invalid",
	[MDEVMIG_LOAD_BAD_LENGTH] = "record length invalid for its type",
	[MDEVMIG_LOAD_OVER_CAP] = "record length over the cap",
	[MDEVMIG_LOAD_BAD_CHECKSUM] = "record checksum mismatch",
	[MDEVMIG_LOAD_TRUNCATED] = "stream truncated before END",
	[MDEVMIG_LOAD_NO_COMPAT] = "first record is not the compatibility record",
	[MDEVMIG_LOAD_STREAM_VERSION] = "unsupported stream format version",
	[MDEVMIG_LOAD_MODEL_VERSION] = "device model version mismatch",
	[MDEVMIG_LOAD_TYPE_MISMATCH] = "mdev type mismatch",
	[MDEVMIG_LOAD_MEM_SIZE] = "device memory size mismatch",
	[MDEVMIG_LOAD_COMPAT_INVALID] = "compatibility record invalid",
	[MDEVMIG_LOAD_DUPLICATE] = "record repeated",
	[MDEVMIG_LOAD_PAGE_RANGE] = "page record out of range",
	[MDEVMIG_LOAD_UNKNOWN_MANDATORY] = "unknown mandatory record",
	[MDEVMIG_LOAD_STATE_INVALID] = "device state record invalid",
	[MDEVMIG_LOAD_STATE_MISSING] = "device state records missing at END",
	[MDEVMIG_LOAD_TRAILING] = "data after END",
};

const char *mdevmig_loader_reason_str(enum mdevmig_load_reason reason)
{
	if ((unsigned int)reason >= MDEVMIG_LOAD_NR_REASONS)
		return "unknown reason";
	return mdevmig_load_reasons[reason];
}

int mdevmig_loader_init(struct mdevmig_loader *ld, struct mdevmig_model *m, void *buf,
			size_t buf_size)
{
	if (!ld || !m || !buf || buf_size < sizeof(struct mdevmig_rec_pages) + MDEVMIG_PAGE_SIZE)
		return -EINVAL;
	memset(ld, 0, sizeof(*ld));
	ld->model = m;
	ld->buf = (uint8_t *)buf;
	ld->buf_size = buf_size;
	ld->cap = buf_size < MDEVMIG_REC_MAX_PAYLOAD ? buf_size : MDEVMIG_REC_MAX_PAYLOAD;
	mdevmig_model_reset(m);
	return 0;
}

static int mdevmig_load_fail(struct mdevmig_loader *ld, enum mdevmig_load_reason reason)
{
	ld->err = -EINVAL;
	ld->reason = reason;
	mdevmig_model_reset(ld->model);
	return ld->err;
}

static bool mdevmig_rec_known(uint32_t type)
{
	return mdevmig_rec_lookup(type) != NULL;
}

/* Checks the header just assembled in ld->hdr and prepares to receive its payload. */
static int mdevmig_load_header(struct mdevmig_loader *ld)
{
	const struct mdevmig_rec_info *info;
	uint32_t type;

	ld->tag = mdevmig_get_le32(ld->hdr + offsetof(struct mdevmig_rec_hdr, tag));
	ld->flags = mdevmig_get_le32(ld->hdr + offsetof(struct mdevmig_rec_hdr, flags));
	ld->length = mdevmig_get_le64(ld->hdr + offsetof(struct mdevmig_rec_hdr, length));
	ld->hash = mdevmig_get_le64(ld->hdr + offsetof(struct mdevmig_rec_hdr, hash));
	type = MDEVMIG_REC_TYPE(ld->tag);
	info = mdevmig_rec_lookup(type);

	if ((ld->tag >> 16) != MDEVMIG_REC_MAGIC)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_BAD_MAGIC);
	if (ld->flags & ~MDEVMIG_REC_F_ALL)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_BAD_FLAGS);
	if (!(ld->seen & SEEN(REC_COMPAT)) && type != REC_COMPAT)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_NO_COMPAT);
	if (!info) {
		if (ld->flags & MDEVMIG_REC_F_MANDATORY)
			return mdevmig_load_fail(ld, MDEVMIG_LOAD_UNKNOWN_MANDATORY);
	} else if (!(ld->flags & MDEVMIG_REC_F_MANDATORY)) {
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_BAD_FLAGS);
	}
	if (ld->length > ld->cap)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_OVER_CAP);

	if (info && !mdevmig_rec_length_ok(info, ld->length))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_BAD_LENGTH);

	ld->hdr_fill = 0;
	ld->payload_fill = 0;
	ld->in_payload = true;
	return 0;
}

static int mdevmig_load_compat(struct mdevmig_loader *ld, const uint8_t *p)
{
	const struct mdevmig_model *m = ld->model;

	if (REC_GET32(p, compat, stream_version) != MDEVMIG_STREAM_VERSION)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STREAM_VERSION);
	if (REC_GET32(p, compat, model_version) != MDEVMIG_MODEL_VERSION)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_MODEL_VERSION);
	if (REC_GET32(p, compat, page_size) != MDEVMIG_PAGE_SIZE || REC_GET64(p, compat, rsvd))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_COMPAT_INVALID);
	if (REC_GET32(p, compat, type_id) != m->type_id)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_TYPE_MISMATCH);
	if (REC_GET64(p, compat, mem_size) != m->mem_size)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_MEM_SIZE);
	return 0;
}

static int mdevmig_load_pages(struct mdevmig_loader *ld, const uint8_t *p)
{
	const struct mdevmig_model *m = ld->model;
	uint64_t npages = m->mem_size >> MDEVMIG_PAGE_SHIFT;
	uint64_t first = REC_GET64(p, pages, first_page);
	uint32_t count = REC_GET32(p, pages, count);

	/* The header check made length = 16 + k pages for some k >= 1 within the cap. */
	if (REC_GET32(p, pages, rsvd) || !count || count > MDEVMIG_REC_PAGES_MAX ||
	    (uint64_t)count != (ld->length - sizeof(struct mdevmig_rec_pages)) >> MDEVMIG_PAGE_SHIFT)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_PAGE_RANGE);
	if (first > npages || count > npages - first)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_PAGE_RANGE);
	memcpy(m->mem + (first << MDEVMIG_PAGE_SHIFT), p + sizeof(struct mdevmig_rec_pages),
	       (size_t)count << MDEVMIG_PAGE_SHIFT);
	ld->pages += count;
	return 0;
}

static int mdevmig_load_config(struct mdevmig_loader *ld, const uint8_t *p)
{
	struct mdevmig_model_cfgspace *c = &ld->cfg;

	if (REC_GET64(p, config, rsvd))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_INVALID);
	c->command = REC_GET16(p, config, command);
	c->cache_line = REC_GET8(p, config, cache_line);
	c->intr_line = REC_GET8(p, config, intr_line);
	c->bar0 = REC_GET32(p, config, bar0);
	c->bar2 = REC_GET64(p, config, bar2);
	c->msi_ctrl = REC_GET16(p, config, msi_ctrl);
	c->msi_data = REC_GET16(p, config, msi_data);
	c->msi_mask = REC_GET32(p, config, msi_mask);
	c->msi_addr = REC_GET64(p, config, msi_addr);
	return 0;
}

static int mdevmig_load_regs(struct mdevmig_loader *ld, const uint8_t *p)
{
	struct mdevmig_model_regs *r = &ld->regs;
	unsigned int i;

	if (REC_GET32(p, regs, rsvd0) || REC_GET32(p, regs, rsvd1))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_INVALID);
	r->ctrl = REC_GET32(p, regs, ctrl);
	r->int_status = REC_GET32(p, regs, int_status);
	r->int_mask = REC_GET32(p, regs, int_mask);
	for (i = 0; i < MDEVMIG_NR_SCRATCH; i++)
		r->scratch[i] = mdevmig_get_le32(p + REC_OFF(regs, scratch) + 4 * i);
	r->ring_base = REC_GET64(p, regs, ring_base);
	r->ring_size = REC_GET32(p, regs, ring_size);
	r->ring_head = REC_GET32(p, regs, ring_head);
	r->ring_tail = REC_GET32(p, regs, ring_tail);
	r->seq = REC_GET32(p, regs, seq);
	r->err_desc = REC_GET32(p, regs, err_desc);
	r->err_dma = REC_GET32(p, regs, err_dma);
	r->err_ring = REC_GET32(p, regs, err_ring);
	return 0;
}

static int mdevmig_load_engine(struct mdevmig_loader *ld, const uint8_t *p)
{
	struct mdevmig_model_engine *e = &ld->eng;
	uint32_t flags = REC_GET32(p, engine, flags);
	unsigned int i;

	if ((flags & ~MDEVMIG_ENGINE_F_ACTIVE) || REC_GET32(p, engine, rsvd) ||
	    REC_GET32(p, engine, rsvd2) || REC_GET32(p, engine, xxh_memsize) >= 32)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_INVALID);
	e->active = flags & MDEVMIG_ENGINE_F_ACTIVE;
	mdevmig_desc_decode(&e->desc, p + REC_OFF(engine, desc));
	e->progress = REC_GET64(p, engine, progress);
	e->xxh.total_len = REC_GET64(p, engine, xxh_total_len);
	for (i = 0; i < 4; i++)
		e->xxh.v[i] = mdevmig_get_le64(p + REC_OFF(engine, xxh_v) + 8 * i);
	memcpy(e->xxh.mem, p + REC_OFF(engine, xxh_mem), sizeof(e->xxh.mem));
	e->xxh.memsize = REC_GET32(p, engine, xxh_memsize);
	return 0;
}

static int mdevmig_load_irq(struct mdevmig_loader *ld, const uint8_t *p)
{
	uint32_t intx = REC_GET32(p, irq, intx_asserted);

	if (intx > 1)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_INVALID);
	ld->intx = intx;
	ld->cfg.msi_pending = REC_GET32(p, irq, msi_pending);
	return 0;
}

/* END: the staged state must be complete and consistent; then it becomes the model's. */
static int mdevmig_load_end(struct mdevmig_loader *ld)
{
	struct mdevmig_model *m = ld->model;

	if ((ld->seen & SEEN_STATE) != SEEN_STATE)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_MISSING);
	if (!mdevmig_cfg_state_valid(m, &ld->cfg) || !mdevmig_regs_state_valid(&ld->regs) ||
	    !mdevmig_engine_state_valid(m, &ld->regs, &ld->eng) ||
	    ld->intx != mdevmig_intx_level(&ld->cfg, &ld->regs))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_STATE_INVALID);

	/* The model was reset at init: INTx is deasserted and the host knows it. */
	m->cfg = ld->cfg;
	m->regs = ld->regs;
	m->eng = ld->eng;
	mdevmig_intx_update(m);
	ld->ended = true;
	return 0;
}

/* The payload of the current record is complete in ld->buf. */
static int mdevmig_load_record(struct mdevmig_loader *ld)
{
	uint32_t type = MDEVMIG_REC_TYPE(ld->tag);
	const uint8_t *p = ld->buf;
	int ret;

	ld->in_payload = false;
	if (mdevmig_xxh64(p, (size_t)ld->length) != ld->hash)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_BAD_CHECKSUM);
	ld->records++;
	if (!mdevmig_rec_known(type))
		return 0;	/* optional and unknown: skipped */
	if (type != REC_PAGES && type != REC_END && (ld->seen & SEEN(type)))
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_DUPLICATE);
	ld->seen |= SEEN(type);

	switch (type) {
	case REC_COMPAT:
		ret = mdevmig_load_compat(ld, p);
		break;
	case REC_PAGES:
		ret = mdevmig_load_pages(ld, p);
		break;
	case REC_CONFIG:
		ret = mdevmig_load_config(ld, p);
		break;
	case REC_REGS:
		ret = mdevmig_load_regs(ld, p);
		break;
	case REC_ENGINE:
		ret = mdevmig_load_engine(ld, p);
		break;
	case REC_IRQ:
		ret = mdevmig_load_irq(ld, p);
		break;
	default:	/* REC_END */
		ret = mdevmig_load_end(ld);
		break;
	}
	return ret;
}

int mdevmig_loader_feed(struct mdevmig_loader *ld, const void *p, size_t n)
{
	const uint8_t *in = (const uint8_t *)p;
	size_t c;
	int ret;

	if (ld->err)
		return ld->err;
	if (n && !p)
		return -EINVAL;
	while (n) {
		if (ld->ended)
			return mdevmig_load_fail(ld, MDEVMIG_LOAD_TRAILING);
		if (!ld->in_payload) {
			c = HDR_SIZE - ld->hdr_fill;
			c = c < n ? c : n;
			memcpy(ld->hdr + ld->hdr_fill, in, c);
			ld->hdr_fill += (uint32_t)c;
			in += c;
			n -= c;
			ld->offset += c;
			if (ld->hdr_fill < HDR_SIZE)
				break;
			ret = mdevmig_load_header(ld);
			if (!ret && !ld->length)
				ret = mdevmig_load_record(ld);
			if (ret)
				return ret;
			continue;
		}
		/* length <= cap <= buf_size: checked by the header. */
		c = ld->length - ld->payload_fill < n ? (size_t)(ld->length - ld->payload_fill) : n;
		memcpy(ld->buf + ld->payload_fill, in, c);
		ld->payload_fill += c;
		in += c;
		n -= c;
		ld->offset += c;
		if (ld->payload_fill == ld->length) {
			ret = mdevmig_load_record(ld);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int mdevmig_loader_finish(struct mdevmig_loader *ld)
{
	if (ld->err)
		return ld->err;
	if (!ld->ended)
		return mdevmig_load_fail(ld, MDEVMIG_LOAD_TRUNCATED);
	return 0;
}
