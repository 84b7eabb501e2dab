/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The device's state stream (format in <linux/mdevmig.h>, "State stream"): writers
 * that emit one record at a time into a caller's buffer, and an incremental loader
 * that treats its input as hostile.
 *
 * A complete stream, as a source emits it:
 *   put_compat, put_pages (for every page, or the dirty ones, possibly repeatedly),
 *   put_state (after the device is stopped), put_end.
 */
#ifndef MDEVMIG_STREAM_H
#define MDEVMIG_STREAM_H

#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of one PAGES record of @count pages, header included. */
#define MDEVMIG_STREAM_PAGES_SIZE(count) \
	(sizeof(struct mdevmig_rec_hdr) + sizeof(struct mdevmig_rec_pages) + \
	 (size_t)(count) * MDEVMIG_PAGE_SIZE)

/*
 * Writers. Each writes complete records at the start of @buf and returns the bytes
 * written, or -ENOSPC if @size is too small (nothing written), or -EINVAL.
 * They read the model but never change it.
 */
long mdevmig_stream_put_compat(const struct mdevmig_model *m, void *buf, size_t size);
/* @count pages from @first_page; 1 <= count <= MDEVMIG_REC_PAGES_MAX, else -EINVAL,
 * as is a range beyond device memory. */
long mdevmig_stream_put_pages(const struct mdevmig_model *m, uint64_t first_page,
			      uint32_t count, void *buf, size_t size);
/* CONFIG, REGS, ENGINE and IRQ records: mdevmig_stream_state_size() bytes. */
long mdevmig_stream_put_state(const struct mdevmig_model *m, void *buf, size_t size);
size_t mdevmig_stream_state_size(void);
long mdevmig_stream_put_end(void *buf, size_t size);

/* Why a load failed. */
enum mdevmig_load_reason {
	MDEVMIG_LOAD_OK = 0,
	MDEVMIG_LOAD_BAD_MAGIC,		/* a record tag without MDEVMIG_REC_MAGIC */
	MDEVMIG_LOAD_BAD_FLAGS,		/* unknown flag bits, or a known type not mandatory */
	MDEVMIG_LOAD_BAD_LENGTH,	/* length wrong for the record type */
	MDEVMIG_LOAD_OVER_CAP,		/* length above MDEVMIG_REC_MAX_PAYLOAD or the buffer */
	MDEVMIG_LOAD_BAD_CHECKSUM,	/* payload XXH64 does not match the header */
	MDEVMIG_LOAD_TRUNCATED,		/* finish() before END */
	MDEVMIG_LOAD_NO_COMPAT,		/* first record is not COMPAT */
	MDEVMIG_LOAD_STREAM_VERSION,	/* unknown stream format version */
	MDEVMIG_LOAD_MODEL_VERSION,	/* device model version differs */
	MDEVMIG_LOAD_TYPE_MISMATCH,	/* mdev type differs */
	MDEVMIG_LOAD_MEM_SIZE,		/* device memory size differs */
	MDEVMIG_LOAD_COMPAT_INVALID,	/* page size or reserved fields of COMPAT */
	MDEVMIG_LOAD_DUPLICATE,		/* COMPAT or a state record seen twice */
	MDEVMIG_LOAD_PAGE_RANGE,	/* PAGES beyond device memory, or count invalid */
	MDEVMIG_LOAD_UNKNOWN_MANDATORY,	/* a mandatory record of unknown type */
	MDEVMIG_LOAD_STATE_INVALID,	/* a state record holds values the device can't have */
	MDEVMIG_LOAD_STATE_MISSING,	/* END before all state records */
	MDEVMIG_LOAD_TRAILING,		/* data after END */
	MDEVMIG_LOAD_NR_REASONS
};

/* One line, no trailing newline, for logs and the tools. */
const char *mdevmig_loader_reason_str(enum mdevmig_load_reason reason);

/* Loader state. Public for embedding; fields are internal. */
struct mdevmig_loader {
	struct mdevmig_model *model;
	uint8_t *buf;			/* one record's payload */
	size_t buf_size;
	uint64_t cap;			/* min(buf_size, MDEVMIG_REC_MAX_PAYLOAD) */

	uint8_t hdr[sizeof(struct mdevmig_rec_hdr)];	/* header being assembled */
	uint32_t hdr_fill;
	uint32_t tag;			/* of the record being received */
	uint32_t flags;
	uint64_t length;
	uint64_t hash;
	uint64_t payload_fill;
	bool in_payload;

	uint32_t seen;			/* bit per known record type received */
	bool ended;
	int err;			/* sticky: 0 or -errno */
	enum mdevmig_load_reason reason;
	uint64_t offset;		/* stream bytes consumed, for messages */
	uint64_t records;
	uint64_t pages;

	/* State records are staged here and applied together at END. */
	struct mdevmig_model_cfgspace cfg;
	struct mdevmig_model_regs regs;
	struct mdevmig_model_engine eng;
	bool intx;
};

/*
 * Starts a load into @m, which is reset first. @buf (@buf_size bytes, at least
 * MDEVMIG_PAGE_SIZE + 16; MDEVMIG_LOADER_BUF_SIZE accepts every writer's records)
 * must stay valid until the loader is done. Returns 0 or -EINVAL.
 */
int mdevmig_loader_init(struct mdevmig_loader *ld, struct mdevmig_model *m, void *buf,
			size_t buf_size);
/*
 * Consumes @n bytes of stream, in any segmentation. Returns 0 or -EINVAL; once it
 * failed it keeps failing, and the model is left reset (device memory may hold pages
 * of the failed stream). Pages are written to device memory as their records
 * complete; the device state is applied when END arrives, and then only ops->intx
 * may be called (to assert INTx if the loaded state has it asserted): no DMA, MSI
 * or kick. After a load the host finds pending engine work with
 * mdevmig_model_work_pending() when it lets the device run.
 */
int mdevmig_loader_feed(struct mdevmig_loader *ld, const void *p, size_t n);
/* 0 if END was consumed and applied, else -EINVAL (TRUNCATED if nothing else failed). */
int mdevmig_loader_finish(struct mdevmig_loader *ld);
static inline enum mdevmig_load_reason mdevmig_loader_reason(const struct mdevmig_loader *ld)
{
	return ld->reason;
}

#ifdef __cplusplus
}
#endif

#endif /* MDEVMIG_STREAM_H */
