/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The only door from vendor/ to its environment: fixed-width types, mem*(), errno
 * values and XXH64, from the kernel when built into mdevmig.ko and from libc and
 * libxxhash otherwise. Everything else the model needs comes from its host through
 * struct mdevmig_model_ops.
 *
 * XXH64 here is always seed 0; the kernel's xxh64() and libxxhash's XXH64() compute
 * the same function, so a stream written by the module loads in userspace and back.
 */
#ifndef MDEVMIG_PORT_H
#define MDEVMIG_PORT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/errno.h>
#include <linux/xxhash.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#ifndef XXH_STATIC_LINKING_ONLY
#define XXH_STATIC_LINKING_ONLY	/* struct XXH64_state_s, to checkpoint a running hash */
#endif
#include <xxhash.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MDEVMIG_U64_MAX		(~(uint64_t)0)

/* Little-endian loads and stores at any alignment, for every byte that crosses a
 * boundary (MMIO, config space, guest memory, the state stream). */
static inline uint16_t mdevmig_get_le16(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;

	return (uint16_t)(b[0] | (b[1] << 8));
}

static inline uint32_t mdevmig_get_le32(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;

	return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
	       ((uint32_t)b[3] << 24);
}

static inline uint64_t mdevmig_get_le64(const void *p)
{
	const uint8_t *b = (const uint8_t *)p;

	return (uint64_t)mdevmig_get_le32(b) | ((uint64_t)mdevmig_get_le32(b + 4) << 32);
}

static inline void mdevmig_put_le16(void *p, uint16_t v)
{
	uint8_t *b = (uint8_t *)p;

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

static inline void mdevmig_put_le32(void *p, uint32_t v)
{
	uint8_t *b = (uint8_t *)p;

	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static inline void mdevmig_put_le64(void *p, uint64_t v)
{
	uint8_t *b = (uint8_t *)p;

	mdevmig_put_le32(b, (uint32_t)v);
	mdevmig_put_le32(b + 4, (uint32_t)(v >> 32));
}

/*
 * A running XXH64 in the algorithm's own terms (byte count, four lanes, the partial
 * 32-byte stripe), so it can be saved in the state stream and continued by either
 * implementation. Converted to the library's state around each call.
 */
struct mdevmig_xxh64_state {
	uint64_t total_len;
	uint64_t v[4];
	uint8_t mem[32];
	uint32_t memsize;
};

static inline uint64_t mdevmig_xxh64(const void *p, size_t len)
{
#ifdef __KERNEL__
	return xxh64(p, len, 0);
#else
	return XXH64(p, len, 0);
#endif
}

/*
 * Field access into the library's streaming state, whose names changed: the kernel's
 * struct xxh64_state has v1..v4/mem64/memsize; libxxhash 0.8.1 (Debian 12) v[]/mem64/
 * memsize; 0.8.3 (Debian 13) acc[]/buffer/bufferedSize. 0.8.2 is assumed to be like
 * 0.8.3 (not built here).
 */
#ifdef __KERNEL__
typedef struct xxh64_state mdevmig_lib_xxh64_state;
#define MDEVMIG_XXH_V(st, i)	(*((i) == 0 ? &(st)->v1 : (i) == 1 ? &(st)->v2 : \
				   (i) == 2 ? &(st)->v3 : &(st)->v4))
#define MDEVMIG_XXH_MEM(st)	((st)->mem64)
#define MDEVMIG_XXH_MEMSIZE(st)	((st)->memsize)
#else
typedef XXH64_state_t mdevmig_lib_xxh64_state;
#if XXH_VERSION_NUMBER >= 802
#define MDEVMIG_XXH_V(st, i)	((st)->acc[i])
#define MDEVMIG_XXH_MEM(st)	((st)->buffer)
#define MDEVMIG_XXH_MEMSIZE(st)	((st)->bufferedSize)
#elif XXH_VERSION_NUMBER >= 801
#define MDEVMIG_XXH_V(st, i)	((st)->v[i])
#define MDEVMIG_XXH_MEM(st)	((st)->mem64)
#define MDEVMIG_XXH_MEMSIZE(st)	((st)->memsize)
#else
#define MDEVMIG_XXH_V(st, i)	(*((i) == 0 ? &(st)->v1 : (i) == 1 ? &(st)->v2 : \
				   (i) == 2 ? &(st)->v3 : &(st)->v4))
#define MDEVMIG_XXH_MEM(st)	((st)->mem64)
#define MDEVMIG_XXH_MEMSIZE(st)	((st)->memsize)
#endif
#endif

static inline void mdevmig_xxh64_to_lib(mdevmig_lib_xxh64_state *l,
					const struct mdevmig_xxh64_state *s)
{
	int i;

	memset(l, 0, sizeof(*l));
	l->total_len = s->total_len;
	for (i = 0; i < 4; i++)
		MDEVMIG_XXH_V(l, i) = s->v[i];
	memcpy(MDEVMIG_XXH_MEM(l), s->mem, sizeof(s->mem));
	MDEVMIG_XXH_MEMSIZE(l) = s->memsize;
}

static inline void mdevmig_xxh64_from_lib(struct mdevmig_xxh64_state *s,
					  const mdevmig_lib_xxh64_state *l)
{
	int i;

	s->total_len = l->total_len;
	for (i = 0; i < 4; i++)
		s->v[i] = MDEVMIG_XXH_V(l, i);
	memcpy(s->mem, MDEVMIG_XXH_MEM(l), sizeof(s->mem));
	s->memsize = MDEVMIG_XXH_MEMSIZE(l);
}

static inline void mdevmig_xxh64_reset(struct mdevmig_xxh64_state *s)
{
	mdevmig_lib_xxh64_state l;

#ifdef __KERNEL__
	xxh64_reset(&l, 0);
#else
	XXH64_reset(&l, 0);
#endif
	mdevmig_xxh64_from_lib(s, &l);
}

static inline void mdevmig_xxh64_update(struct mdevmig_xxh64_state *s, const void *p,
					size_t len)
{
	mdevmig_lib_xxh64_state l;

	mdevmig_xxh64_to_lib(&l, s);
#ifdef __KERNEL__
	xxh64_update(&l, p, len);
#else
	XXH64_update(&l, p, len);
#endif
	mdevmig_xxh64_from_lib(s, &l);
}

static inline uint64_t mdevmig_xxh64_digest(const struct mdevmig_xxh64_state *s)
{
	mdevmig_lib_xxh64_state l;

	mdevmig_xxh64_to_lib(&l, s);
#ifdef __KERNEL__
	return xxh64_digest(&l);
#else
	return XXH64_digest(&l);
#endif
}

#ifdef __cplusplus
}
#endif

#endif /* MDEVMIG_PORT_H */
