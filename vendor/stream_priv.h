/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private to the stream writers and the loader: field access to the little-endian
 * record payloads of <linux/mdevmig.h> by offset, so the wire layout never depends
 * on the host's byte order or struct padding.
 */
#ifndef MDEVMIG_STREAM_PRIV_H
#define MDEVMIG_STREAM_PRIV_H

#include "port.h"

#define REC_OFF(rec, field)		offsetof(struct mdevmig_rec_##rec, field)
#define REC_PUT8(p, rec, field, v)	((p)[REC_OFF(rec, field)] = (uint8_t)(v))
#define REC_PUT16(p, rec, field, v)	mdevmig_put_le16((p) + REC_OFF(rec, field), (v))
#define REC_PUT32(p, rec, field, v)	mdevmig_put_le32((p) + REC_OFF(rec, field), (v))
#define REC_PUT64(p, rec, field, v)	mdevmig_put_le64((p) + REC_OFF(rec, field), (v))
#define REC_GET8(p, rec, field)		((p)[REC_OFF(rec, field)])
#define REC_GET16(p, rec, field)	mdevmig_get_le16((p) + REC_OFF(rec, field))
#define REC_GET32(p, rec, field)	mdevmig_get_le32((p) + REC_OFF(rec, field))
#define REC_GET64(p, rec, field)	mdevmig_get_le64((p) + REC_OFF(rec, field))

#endif /* MDEVMIG_STREAM_PRIV_H */
