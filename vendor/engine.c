// SPDX-License-Identifier: GPL-2.0
/*
 * The DMA engine: fetches descriptors from the guest's ring and executes them in
 * steps of at most MDEVMIG_DMA_STEP_BYTES, so the state between two steps (the
 * descriptor in flight and its progress) is all there is to save.
 * Semantics: <linux/mdevmig.h>, "DMA descriptors and completions".
 */
#include "model_priv.h"

void mdevmig_engine_reset(struct mdevmig_model *m)
{
	memset(&m->eng, 0, sizeof(m->eng));
}

/* Host DMA with the one check the host need not make: the range does not wrap. */
static int mdevmig_dma_rd(struct mdevmig_model *m, uint64_t iova, void *buf, size_t len)
{
	if (!len)
		return 0;
	if (iova > MDEVMIG_U64_MAX - (len - 1))
		return -EFAULT;
	return m->ops->dma_read(m->host, iova, buf, len) ? -EFAULT : 0;
}

static int mdevmig_dma_wr(struct mdevmig_model *m, uint64_t iova, const void *buf, size_t len)
{
	if (!len)
		return 0;
	if (iova > MDEVMIG_U64_MAX - (len - 1))
		return -EFAULT;
	return m->ops->dma_write(m->host, iova, buf, len) ? -EFAULT : 0;
}

static bool mdevmig_dev_range_ok(const struct mdevmig_model *m, uint64_t off, uint64_t len)
{
	return off <= m->mem_size && len <= m->mem_size - off;
}

static bool mdevmig_guest_range_ok(uint64_t iova, uint64_t len)
{
	return !len || iova <= MDEVMIG_U64_MAX - (len - 1);
}

/* Returns MDEVMIG_DMA_ST_OK or the status a descriptor completes with unexecuted. */
uint32_t mdevmig_desc_check(const struct mdevmig_model *m, const struct mdevmig_dma_desc *d)
{
	bool ok;

	if (d->opcode < MDEVMIG_DMA_OP_COPY_TO_DEV || d->opcode > MDEVMIG_DMA_OP_MAX)
		return MDEVMIG_DMA_ST_BAD_OPCODE;
	if ((d->flags & ~MDEVMIG_DMA_F_ALL) || d->rsvd)
		return MDEVMIG_DMA_ST_BAD_DESC;
	if (d->opcode == MDEVMIG_DMA_OP_FILL ? d->src != 0 : d->pattern != 0)
		return MDEVMIG_DMA_ST_BAD_DESC;
	if (d->len > MDEVMIG_DMA_MAX_LEN)
		return MDEVMIG_DMA_ST_BAD_RANGE;

	switch (d->opcode) {
	case MDEVMIG_DMA_OP_COPY_TO_DEV:
		ok = mdevmig_guest_range_ok(d->src, d->len) &&
		     mdevmig_dev_range_ok(m, d->dst, d->len);
		break;
	case MDEVMIG_DMA_OP_COPY_FROM_DEV:
		ok = mdevmig_dev_range_ok(m, d->src, d->len) &&
		     mdevmig_guest_range_ok(d->dst, d->len);
		break;
	case MDEVMIG_DMA_OP_COPY_GUEST:
		ok = mdevmig_guest_range_ok(d->src, d->len) &&
		     mdevmig_guest_range_ok(d->dst, d->len);
		break;
	case MDEVMIG_DMA_OP_FILL:
		ok = mdevmig_dev_range_ok(m, d->dst, d->len);
		break;
	case MDEVMIG_DMA_OP_HASH:
		ok = mdevmig_dev_range_ok(m, d->src, d->len) &&
		     mdevmig_guest_range_ok(d->dst, sizeof(uint64_t));
		break;
	default:	/* a new opcode needs its checks here */
		return MDEVMIG_DMA_ST_BAD_OPCODE;
	}
	return ok ? MDEVMIG_DMA_ST_OK : MDEVMIG_DMA_ST_BAD_RANGE;
}

void mdevmig_desc_decode(struct mdevmig_dma_desc *d, const uint8_t *raw)
{
	d->opcode = mdevmig_get_le32(raw + offsetof(struct mdevmig_dma_desc, opcode));
	d->flags = mdevmig_get_le32(raw + offsetof(struct mdevmig_dma_desc, flags));
	d->src = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, src));
	d->dst = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, dst));
	d->len = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, len));
	d->pattern = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, pattern));
	d->cmpl = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, cmpl));
	d->user_data = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, user_data));
	d->rsvd = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_desc, rsvd));
}

void mdevmig_desc_encode(uint8_t *raw, const struct mdevmig_dma_desc *d)
{
	mdevmig_put_le32(raw + offsetof(struct mdevmig_dma_desc, opcode), d->opcode);
	mdevmig_put_le32(raw + offsetof(struct mdevmig_dma_desc, flags), d->flags);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, src), d->src);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, dst), d->dst);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, len), d->len);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, pattern), d->pattern);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, cmpl), d->cmpl);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, user_data), d->user_data);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_desc, rsvd), d->rsvd);
}

void mdevmig_cmpl_encode(uint8_t *raw, const struct mdevmig_dma_cmpl *c)
{
	mdevmig_put_le32(raw + offsetof(struct mdevmig_dma_cmpl, status), c->status);
	mdevmig_put_le32(raw + offsetof(struct mdevmig_dma_cmpl, seq), c->seq);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_cmpl, user_data), c->user_data);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_cmpl, bytes_done), c->bytes_done);
	mdevmig_put_le64(raw + offsetof(struct mdevmig_dma_cmpl, rsvd), c->rsvd);
}

void mdevmig_cmpl_decode(struct mdevmig_dma_cmpl *c, const uint8_t *raw)
{
	c->status = mdevmig_get_le32(raw + offsetof(struct mdevmig_dma_cmpl, status));
	c->seq = mdevmig_get_le32(raw + offsetof(struct mdevmig_dma_cmpl, seq));
	c->user_data = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_cmpl, user_data));
	c->bytes_done = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_cmpl, bytes_done));
	c->rsvd = mdevmig_get_le64(raw + offsetof(struct mdevmig_dma_cmpl, rsvd));
}

/* Consumes the ring slot at HEAD: SEQ and HEAD advance, nothing is in flight. */
static void mdevmig_engine_consume(struct mdevmig_model *m)
{
	m->regs.seq++;
	m->regs.ring_head = (m->regs.ring_head + 1) & (m->regs.ring_size - 1);
	mdevmig_engine_reset(m);
}

/* Writes the completion of the descriptor in eng.desc and raises its interrupts. */
static void mdevmig_engine_complete(struct mdevmig_model *m, uint32_t status)
{
	const struct mdevmig_dma_desc *d = &m->eng.desc;
	struct mdevmig_dma_cmpl c = {
		.status = status,
		.seq = m->regs.seq,
		.user_data = d->user_data,
		.bytes_done = m->eng.progress,
	};
	uint8_t rec[MDEVMIG_CMPL_SIZE];
	uint32_t causes = 0;

	mdevmig_cmpl_encode(rec, &c);
	if (mdevmig_dma_wr(m, d->cmpl, rec, sizeof(rec))) {
		m->regs.err_dma++;
		causes |= MDEVMIG_INT_ERROR;
	}
	if (status != MDEVMIG_DMA_ST_OK) {
		m->regs.err_desc++;
		causes |= MDEVMIG_INT_DONE | MDEVMIG_INT_ERROR;
	} else if (!(d->flags & MDEVMIG_DMA_F_NO_IRQ)) {
		causes |= MDEVMIG_INT_DONE;
	}
	mdevmig_engine_consume(m);
	if (causes)
		mdevmig_irq_raise(m, causes);
}

/* Fetches the descriptor at HEAD. Returns true if it is now in flight. */
static bool mdevmig_engine_fetch(struct mdevmig_model *m)
{
	struct mdevmig_model_engine *e = &m->eng;
	uint64_t off = (uint64_t)m->regs.ring_head * MDEVMIG_DESC_SIZE;
	uint8_t raw[MDEVMIG_DESC_SIZE];
	uint32_t status;

	/* A ring running past 2^64 does not wrap to IOVA 0: those slots fault. */
	if (m->regs.ring_base > MDEVMIG_U64_MAX - off ||
	    mdevmig_dma_rd(m, m->regs.ring_base + off, raw, sizeof(raw))) {
		m->regs.err_dma++;
		m->regs.err_ring++;
		mdevmig_engine_consume(m);
		mdevmig_irq_raise(m, MDEVMIG_INT_RING);
		return false;
	}
	mdevmig_engine_reset(m);
	mdevmig_desc_decode(&e->desc, raw);
	status = mdevmig_desc_check(m, &e->desc);
	if (status != MDEVMIG_DMA_ST_OK) {
		mdevmig_engine_complete(m, status);
		return false;
	}
	e->active = true;
	if (e->desc.opcode == MDEVMIG_DMA_OP_HASH)
		mdevmig_xxh64_reset(&e->xxh);
	return true;
}

/* Fills @n bytes with @pattern, starting at pattern byte @phase. */
static void mdevmig_fill(uint8_t *dst, size_t n, uint64_t pattern, unsigned int phase)
{
	uint8_t pat[8];
	size_t i, k;

	mdevmig_put_le64(pat, pattern);
	for (i = 0; i < n && i < sizeof(pat); i++)
		dst[i] = pat[(phase + i) & 7];
	/* The first k bytes are a whole number of periods: double them. */
	for (k = sizeof(pat); k < n; k += i) {
		i = n - k < k ? n - k : k;
		memcpy(dst + k, dst, i);
	}
}

/* Guest→guest through the bounce buffer. Returns 0 or a status; *done: bytes copied. */
static uint32_t mdevmig_copy_guest(struct mdevmig_model *m, uint64_t src, uint64_t dst,
				   size_t n, size_t *done)
{
	size_t c;

	for (*done = 0; *done < n; *done += c) {
		c = n - *done < sizeof(m->bounce) ? n - *done : sizeof(m->bounce);
		if (mdevmig_dma_rd(m, src + *done, m->bounce, c))
			return MDEVMIG_DMA_ST_READ_FAULT;
		if (mdevmig_dma_wr(m, dst + *done, m->bounce, c))
			return MDEVMIG_DMA_ST_WRITE_FAULT;
	}
	return MDEVMIG_DMA_ST_OK;
}

/* The next chunk of the descriptor in flight; completes it at the end or on a fault. */
static void mdevmig_engine_step(struct mdevmig_model *m)
{
	struct mdevmig_model_engine *e = &m->eng;
	const struct mdevmig_dma_desc *d = &e->desc;
	uint64_t left = d->len - e->progress;
	size_t n = left < MDEVMIG_DMA_STEP_BYTES ? (size_t)left : MDEVMIG_DMA_STEP_BYTES;
	uint32_t status = MDEVMIG_DMA_ST_OK;
	uint8_t result[sizeof(uint64_t)];
	size_t done = n;

	if (n) {
		switch (d->opcode) {
		case MDEVMIG_DMA_OP_COPY_TO_DEV:
			if (mdevmig_dma_rd(m, d->src + e->progress, m->mem + d->dst + e->progress, n))
				status = MDEVMIG_DMA_ST_READ_FAULT;
			m->ops->mem_dirty(m->host, d->dst + e->progress, n);
			break;
		case MDEVMIG_DMA_OP_COPY_FROM_DEV:
			if (mdevmig_dma_wr(m, d->dst + e->progress, m->mem + d->src + e->progress, n))
				status = MDEVMIG_DMA_ST_WRITE_FAULT;
			break;
		case MDEVMIG_DMA_OP_COPY_GUEST:
			status = mdevmig_copy_guest(m, d->src + e->progress, d->dst + e->progress,
						    n, &done);
			break;
		case MDEVMIG_DMA_OP_FILL:
			mdevmig_fill(m->mem + d->dst + e->progress, n, d->pattern,
				     (unsigned int)(e->progress & 7));
			m->ops->mem_dirty(m->host, d->dst + e->progress, n);
			break;
		case MDEVMIG_DMA_OP_HASH:
			mdevmig_xxh64_update(&e->xxh, m->mem + d->src + e->progress, n);
			break;
		default:	/* mdevmig_desc_check() lets no other opcode in */
			mdevmig_engine_complete(m, MDEVMIG_DMA_ST_BAD_OPCODE);
			return;
		}
	}
	if (status != MDEVMIG_DMA_ST_OK) {
		m->regs.err_dma++;
		if (d->opcode == MDEVMIG_DMA_OP_COPY_GUEST)
			e->progress += done;
		mdevmig_engine_complete(m, status);
		return;
	}
	e->progress += n;
	if (e->progress < d->len)
		return;
	if (d->opcode == MDEVMIG_DMA_OP_HASH) {
		mdevmig_put_le64(result, mdevmig_xxh64_digest(&e->xxh));
		if (mdevmig_dma_wr(m, d->dst, result, sizeof(result))) {
			m->regs.err_dma++;
			status = MDEVMIG_DMA_ST_WRITE_FAULT;
		}
	}
	mdevmig_engine_complete(m, status);
}

int mdevmig_model_run(struct mdevmig_model *m, unsigned int max_steps)
{
	unsigned int i;

	for (i = 0; i < max_steps; i++) {
		if (!mdevmig_model_work_pending(m))
			return 0;
		if (!m->eng.active && !mdevmig_engine_fetch(m))
			continue;
		mdevmig_engine_step(m);
	}
	return mdevmig_model_work_pending(m) ? 1 : 0;
}

static bool mdevmig_xxh_zero(const struct mdevmig_xxh64_state *x)
{
	unsigned int i;

	for (i = 0; i < 4; i++)
		if (x->v[i])
			return false;
	for (i = 0; i < sizeof(x->mem); i++)
		if (x->mem[i])
			return false;
	return !x->total_len && !x->memsize;
}

static bool mdevmig_desc_zero(const struct mdevmig_dma_desc *d)
{
	return !d->opcode && !d->flags && !d->src && !d->dst && !d->len && !d->pattern &&
	       !d->cmpl && !d->user_data && !d->rsvd;
}

/* Could the engine be in state @eng with registers @regs? (Loader's check.) */
bool mdevmig_engine_state_valid(const struct mdevmig_model *m,
				const struct mdevmig_model_regs *regs,
				const struct mdevmig_model_engine *eng)
{
	const struct mdevmig_dma_desc *d = &eng->desc;

	if (!eng->active)
		return mdevmig_desc_zero(d) && !eng->progress && mdevmig_xxh_zero(&eng->xxh);
	/*
	 * In flight needs a ring, but not HEAD != TAIL: a guest may move TAIL back onto
	 * HEAD while the descriptor at HEAD runs.
	 */
	if (!regs->ring_size)
		return false;
	if (mdevmig_desc_check(m, d) != MDEVMIG_DMA_ST_OK || eng->progress >= d->len)
		return false;
	if (d->opcode != MDEVMIG_DMA_OP_HASH)
		return mdevmig_xxh_zero(&eng->xxh);
	return eng->xxh.total_len == eng->progress && eng->xxh.memsize == (eng->progress & 31);
}
