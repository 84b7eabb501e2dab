/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The record types of the device's state stream (<linux/mdevmig.h>, "State stream")
 * and the payload length each one must have: the one table the loader (loader.c) and
 * the userspace decoder of `mdevmig inspect` (tools/devstream/) both check records
 * against. Header only, so userspace can use it without linking the model.
 */
#ifndef MDEVMIG_RECORDS_H
#define MDEVMIG_RECORDS_H

#include "port.h"
#include <linux/mdevmig.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A record's type: the low half of its tag (MDEVMIG_REC_TAG(type)). */
#define MDEVMIG_REC_TYPE(tag)	((uint32_t)(tag) & 0xffffu)

/* The known types, numbered as in their tags. */
enum mdevmig_rec_type {
	MDEVMIG_REC_TYPE_COMPAT = MDEVMIG_REC_TYPE(MDEVMIG_REC_COMPAT),
	MDEVMIG_REC_TYPE_CONFIG = MDEVMIG_REC_TYPE(MDEVMIG_REC_CONFIG),
	MDEVMIG_REC_TYPE_REGS = MDEVMIG_REC_TYPE(MDEVMIG_REC_REGS),
	MDEVMIG_REC_TYPE_ENGINE = MDEVMIG_REC_TYPE(MDEVMIG_REC_ENGINE),
	MDEVMIG_REC_TYPE_IRQ = MDEVMIG_REC_TYPE(MDEVMIG_REC_IRQ),
	MDEVMIG_REC_TYPE_PAGES = MDEVMIG_REC_TYPE(MDEVMIG_REC_PAGES),
	MDEVMIG_REC_TYPE_END = MDEVMIG_REC_TYPE(MDEVMIG_REC_END),
};

/* What a known record type looks like on the wire. */
struct mdevmig_rec_info {
	uint32_t type;		/* MDEVMIG_REC_TYPE_* */
	const char *name;	/* "COMPAT", as in the tag's name */
	/*
	 * Payload bytes: exactly this many, unless per_page; then this fixed part
	 * (struct mdevmig_rec_pages) followed by whole pages of MDEVMIG_PAGE_SIZE bytes.
	 */
	uint32_t length;
	bool per_page;
};

/* The entry of known type @type, or NULL for a type this stream version lacks. */
static inline const struct mdevmig_rec_info *mdevmig_rec_lookup(uint32_t type)
{
	static const struct mdevmig_rec_info recs[] = {
		{ MDEVMIG_REC_TYPE_COMPAT, "COMPAT", sizeof(struct mdevmig_rec_compat), false },
		{ MDEVMIG_REC_TYPE_CONFIG, "CONFIG", sizeof(struct mdevmig_rec_config), false },
		{ MDEVMIG_REC_TYPE_REGS, "REGS", sizeof(struct mdevmig_rec_regs), false },
		{ MDEVMIG_REC_TYPE_ENGINE, "ENGINE", sizeof(struct mdevmig_rec_engine), false },
		{ MDEVMIG_REC_TYPE_IRQ, "IRQ", sizeof(struct mdevmig_rec_irq), false },
		{ MDEVMIG_REC_TYPE_PAGES, "PAGES", sizeof(struct mdevmig_rec_pages), true },
		{ MDEVMIG_REC_TYPE_END, "END", 0, false },
	};
	size_t i;

	for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		if (recs[i].type == type)
			return &recs[i];
	}
	return NULL;
}

/*
 * Whether @length bytes of payload fit @info: the exact length, or for a per-page type
 * the fixed part and at least one whole page (an upper bound is the reader's cap,
 * MDEVMIG_REC_MAX_PAYLOAD at most).
 */
static inline bool mdevmig_rec_length_ok(const struct mdevmig_rec_info *info, uint64_t length)
{
	if (!info->per_page)
		return length == info->length;
	return length >= (uint64_t)info->length + MDEVMIG_PAGE_SIZE &&
	       ((length - info->length) & (MDEVMIG_PAGE_SIZE - 1)) == 0;
}

#ifdef __cplusplus
}
#endif

#endif /* MDEVMIG_RECORDS_H */
