/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mdevmig user API: the one header shared by the kernel module (kmod/), the portable
 * device model (vendor/) and userspace (migration/, dirty/, tools/, tests/).
 *
 * Every structure here is fixed-width (__u32/__u64/__aligned_u64), little-endian on
 * the wire, with reserved fields that must be zero. Sizes and offsets are pinned by
 * BUILD_BUG_ON in kmod/ (mdevmig_uapi_checks()) and by static_assert in
 * tests/unit/uapi/layout_test.cc, so a layout change breaks both builds.
 */
#ifndef _UAPI_LINUX_MDEVMIG_H
#define _UAPI_LINUX_MDEVMIG_H

#include <linux/types.h>

/* ---------------------------------------------------------------------------------
 * Identity of the virtual PCI function every mdevmig instance presents.
 * --------------------------------------------------------------------------------- */

/* PCI IDs: not registered with the PCI-SIG; chosen to be unlikely to collide. */
#define MDEVMIG_PCI_VENDOR_ID		0x1de7
#define MDEVMIG_PCI_DEVICE_ID		0x6d67		/* "mg" */
#define MDEVMIG_PCI_SUBSYS_VENDOR_ID	MDEVMIG_PCI_VENDOR_ID
#define MDEVMIG_PCI_SUBSYS_ID		0x0001
#define MDEVMIG_PCI_REVISION		0x01
#define MDEVMIG_PCI_CLASS		0x120000	/* processing accelerator */

/* Name of the mdev parent class and the prefix of every mdev type's sysfs name. */
#define MDEVMIG_DRIVER_NAME		"mdevmig"

/* =================================================================================
 * The device model (vendor/): what a guest driver programs and what the state
 * stream carries. Everything below is owned by vendor/ and pinned by
 * tests/unit/uapi/layout_test.cc.
 *
 * Byte order: every multi-byte field, in MMIO, in guest memory (descriptors,
 * completions) and in the state stream, is little-endian.
 * ================================================================================= */

/*
 * Version of the device model: register map, descriptor formats, engine
 * semantics. Bumped on any guest-visible change. Loading a state stream produced by
 * a different model version fails (MDEVMIG_LOAD_MODEL_VERSION): versions must match
 * exactly.
 */
#define MDEVMIG_MODEL_VERSION		1

/* Device memory is migrated in pages of this size (independent of the CPU's). */
#define MDEVMIG_PAGE_SHIFT		12
#define MDEVMIG_PAGE_SIZE		(1u << MDEVMIG_PAGE_SHIFT)

/*
 * Device memory size of an instance: a non-zero multiple of MDEVMIG_PAGE_SIZE, at
 * most MDEVMIG_MEM_MAX_SIZE. BAR2 is sized to the next power of two >= the memory
 * size (equal when the size is a power of two, the normal case).
 */
#define MDEVMIG_MEM_MAX_SIZE		(1ull << 40)

/* ---------------------------------------------------------------------------------
 * PCI configuration space (256 bytes, conventional PCI header type 0).
 *
 * 0x00 vendor/device    RO  MDEVMIG_PCI_VENDOR_ID / MDEVMIG_PCI_DEVICE_ID
 * 0x04 command          RW  memory space (bit 1), bus master (bit 2), parity (6),
 *                           SERR (8), INTx disable (10); other bits read 0.
 *                           The DMA engine and MSI need bus master enabled.
 * 0x06 status           RO  capabilities list (bit 4) = 1; interrupt status (bit 3)
 *                           = an INTx interrupt is pending (see "Interrupts").
 * 0x08 revision, class  RO  MDEVMIG_PCI_REVISION, MDEVMIG_PCI_CLASS
 * 0x0c cache line size  RW  (no effect); latency timer, header type, BIST read 0
 * 0x10 BAR0             RW  32-bit non-prefetchable memory, MDEVMIG_REGS_SIZE bytes:
 *                           bits 31:12 hold the address; writing all ones and
 *                           reading back sizes it (0xfffff000).
 * 0x14 BAR1             RO  0 (not implemented)
 * 0x18 BAR2 (+ 0x1c)    RW  64-bit prefetchable memory (flags 0xc), the device memory:
 *                           address bits above log2(BAR size) are writable, the
 *                           lower ones read 0; all-ones sizing works on both dwords.
 * 0x20..0x28            RO  0 (BAR4, BAR5, CardBus CIS)
 * 0x2c subsystem IDs    RO  MDEVMIG_PCI_SUBSYS_VENDOR_ID / MDEVMIG_PCI_SUBSYS_ID
 * 0x30 expansion ROM    RO  0 (no ROM)
 * 0x34 capabilities     RO  MDEVMIG_CFG_MSI_CAP
 * 0x3c interrupt line   RW  (no effect); interrupt pin RO 1 (INTA#); min/max RO 0
 * 0x40 MSI capability   see below; the end of the capability list
 * 0x58..0xff            RO  0
 * Reads and writes of any length at any offset within the 256 bytes are accepted;
 * bytes of read-only or unimplemented fields ignore writes and read as above.
 * --------------------------------------------------------------------------------- */
#define MDEVMIG_CFG_SIZE		256
#define MDEVMIG_CFG_MSI_CAP		0x40

/*
 * MSI capability at MDEVMIG_CFG_MSI_CAP: 64-bit address, per-vector masking,
 * up to MDEVMIG_MSI_MAX_VECTORS vectors.
 *
 * +0x00 cap id 0x05, next 0x00      RO
 * +0x02 message control             bit 0 enable RW; bits 3:1 multiple message
 *                                   capable RO = log2(MDEVMIG_MSI_MAX_VECTORS);
 *                                   bits 6:4 multiple message enable RW (values above
 *                                   the capable field are clamped to it); bit 7
 *                                   64-bit RO 1; bit 8 per-vector masking RO 1
 * +0x04 message address, low        RW, bits 1:0 read 0
 * +0x08 message address, high       RW
 * +0x0c message data                RW 16 bits; bits 31:16 read 0
 * +0x10 mask bits                   RW, bit v masks vector v (bits >= max read 0)
 * +0x14 pending bits                RO, bit v: vector v fired while masked; it is
 *                                   sent when unmasked
 */
#define MDEVMIG_MSI_MAX_VECTORS		4
#define MDEVMIG_MSI_CAP_SIZE		0x18

/* ---------------------------------------------------------------------------------
 * BAR0: registers, MDEVMIG_REGS_SIZE bytes of MMIO.
 *
 * Accesses of 1, 2, 4 or 8 bytes, naturally aligned. An 8-byte access is two 4-byte
 * accesses, low dword first; a 1- or 2-byte write changes only its bytes (for
 * write-1-to-clear registers, the bytes not written clear nothing). Offsets not listed
 * read 0 and ignore writes. "RO" registers ignore writes.
 * --------------------------------------------------------------------------------- */
#define MDEVMIG_REGS_SIZE		0x1000

/* Identification (all RO). */
#define MDEVMIG_REG_ID			0x000	/* MDEVMIG_ID_MAGIC */
#define MDEVMIG_REG_VERSION		0x004	/* MDEVMIG_MODEL_VERSION */
#define MDEVMIG_REG_CAPS		0x008	/* bit n set: DMA opcode n is implemented */
#define MDEVMIG_REG_TYPE_ID		0x00c	/* the mdev type this instance was created as */
#define MDEVMIG_REG_MEM_SIZE_LO		0x010	/* device memory size in bytes, low dword */
#define MDEVMIG_REG_MEM_SIZE_HI		0x014	/* ... high dword */
#define MDEVMIG_REG_RING_MAX		0x018	/* MDEVMIG_RING_MAX_ENTRIES */
#define MDEVMIG_REG_MAX_LEN		0x01c	/* MDEVMIG_DMA_MAX_LEN */

#define MDEVMIG_ID_MAGIC		0x6d64766du	/* "mvdm" in memory order */

/* Control (RW). */
#define MDEVMIG_REG_CTRL		0x020
#define  MDEVMIG_CTRL_ENABLE		(1u << 0)	/* the DMA engine may run */
#define  MDEVMIG_CTRL_RESET		(1u << 1)	/* write 1: soft reset (reads 0) */
/*
 * ENABLE: the engine fetches and executes descriptors while ENABLE is set and the
 * PCI command register has bus master enabled. Clearing it pauses the engine between
 * two steps; an in-flight descriptor resumes where it stopped when ENABLE is set again.
 * RESET: returns every BAR0 register to its reset value and drops queued and
 * in-flight work without writing completions. Config space and device memory are
 * not affected. A write with both bits set resets and leaves the engine disabled.
 */

/* Status (RO). */
#define MDEVMIG_REG_STATUS		0x024
#define  MDEVMIG_STATUS_ENABLED		(1u << 0)	/* CTRL.ENABLE */
#define  MDEVMIG_STATUS_BUSY		(1u << 1)	/* descriptors queued or in flight */
#define  MDEVMIG_STATUS_ACTIVE		(1u << 2)	/* a descriptor is in flight */
#define  MDEVMIG_STATUS_BLOCKED		(1u << 3)	/* BUSY, but ENABLE or bus master off */

/*
 * Interrupts. INT_STATUS collects causes (write 1 to clear); INT_MASK masks them
 * (1 = masked; the reset value masks nothing); writing INT_SET raises the written
 * causes as if the events had happened (for driver self-tests).
 *
 * Delivery, when MSI is enabled in config space: every event of an unmasked cause
 * sends one message, on vector = cause bit number if that vector is enabled (multiple
 * message enable), else vector 0. Unmasking a cause whose status bit is set sends one
 * message. Messages need bus master enabled (else they are dropped); a vector masked
 * in the MSI capability latches its pending bit instead, and is sent on unmask.
 * When MSI is disabled: INTx (pin A) is asserted while (INT_STATUS & ~INT_MASK) != 0
 * and the command register's INTx disable bit is clear; config status bit 3 shows
 * (INT_STATUS & ~INT_MASK) != 0 (with MSI disabled) regardless of INTx disable.
 */
#define MDEVMIG_REG_INT_STATUS		0x028	/* RW1C */
#define MDEVMIG_REG_INT_MASK		0x02c	/* RW */
#define MDEVMIG_REG_INT_SET		0x030	/* WO, reads 0 */
#define  MDEVMIG_INT_DONE		(1u << 0)	/* a descriptor completed (any status) */
#define  MDEVMIG_INT_ERROR		(1u << 1)	/* a descriptor completed with an error, or its completion could not be written */
#define  MDEVMIG_INT_RING		(1u << 2)	/* ring misprogrammed or a descriptor could not be fetched */
#define  MDEVMIG_INT_SW			(1u << 3)	/* raised only through INT_SET */
#define  MDEVMIG_INT_ALL		0xfu

/* Scratch registers (RW, no effect), for driver and migration tests. */
#define MDEVMIG_REG_SCRATCH(i)		(0x040 + 4 * (i))
#define MDEVMIG_NR_SCRATCH		16

/*
 * DMA command queue. A ring of MDEVMIG_REG_RING_SIZE descriptors (struct
 * mdevmig_dma_desc, 64 bytes each) in guest memory at RING_BASE. The driver writes
 * descriptors at TAIL and then writes the new TAIL (the doorbell); the device
 * executes the descriptor at HEAD and then advances HEAD. HEAD == TAIL: empty. So a
 * ring of N entries holds at most N - 1 descriptors. Indices wrap at RING_SIZE.
 *
 * RING_BASE_LO/HI  RW  IOVA of entry 0; bits 5:0 read 0 (64-byte aligned).
 * RING_SIZE        RW  entries: 0 (no ring) or a power of two <= RING_MAX. Any other
 *                      value reads back 0 and raises MDEVMIG_INT_RING.
 *                  Writing any of these three drops queued and in-flight work
 *                  (no completions) and sets HEAD = TAIL = 0.
 * RING_HEAD        RO  index of the next descriptor the device executes.
 * RING_TAIL        RW  doorbell: index one past the last valid descriptor. The value
 *                      is masked with RING_SIZE - 1 (free-running counters work). A
 *                      write while RING_SIZE is 0 is ignored and raises
 *                      MDEVMIG_INT_RING.
 * SEQ              RO  sequence number the next completed descriptor gets; +1 per
 *                      consumed descriptor (also for one that could not be fetched),
 *                      wraps at 2^32. 0 after reset.
 * ERR_DESC         RO  descriptors completed with a status other than OK.
 * ERR_DMA          RO  DMA accesses to guest memory that faulted (descriptor fetch,
 *                      data, completion write).
 * ERR_RING         RO  ring errors: invalid RING_SIZE writes, doorbells without a
 *                      ring, descriptors that could not be fetched.
 * The counters wrap at 2^32 and are cleared by reset.
 */
#define MDEVMIG_REG_RING_BASE_LO	0x100
#define MDEVMIG_REG_RING_BASE_HI	0x104
#define MDEVMIG_REG_RING_SIZE		0x108
#define MDEVMIG_REG_RING_HEAD		0x10c
#define MDEVMIG_REG_RING_TAIL		0x110
#define MDEVMIG_REG_SEQ			0x114
#define MDEVMIG_REG_ERR_DESC		0x118
#define MDEVMIG_REG_ERR_DMA		0x11c
#define MDEVMIG_REG_ERR_RING		0x120

#define MDEVMIG_RING_MAX_ENTRIES	4096

/* ---------------------------------------------------------------------------------
 * DMA descriptors and completions (in guest memory).
 *
 * The engine works in steps of at most MDEVMIG_DMA_STEP_BYTES of one descriptor; a
 * descriptor of length 0 completes in the step that fetches it. Between two steps the
 * device can be stopped and its state saved; the saved state carries the in-flight
 * descriptor and its progress, and the destination continues it exactly.
 *
 * Fetch: 64 bytes at RING_BASE + 64 * HEAD. If that read faults, the slot is consumed
 * without a completion (no address is known): SEQ and HEAD advance, ERR_DMA and
 * ERR_RING count it and MDEVMIG_INT_RING is raised.
 *
 * Validation, before any data moves (a failure completes the descriptor with the
 * status named, bytes_done 0):
 *   - opcode is one of MDEVMIG_DMA_OP_*                 else BAD_OPCODE
 *   - flags has only MDEVMIG_DMA_F_* bits; fields the opcode does not use and rsvd
 *     are 0                                             else BAD_DESC
 *   - len <= MDEVMIG_DMA_MAX_LEN; a device-memory range lies within device memory;
 *     a guest range does not wrap past 2^64            else BAD_RANGE
 * Data faults (the host's IOMMU refuses an access) stop the descriptor with
 * READ_FAULT or WRITE_FAULT; bytes_done tells how far it got. Bytes of device memory
 * in the failing step may have been written. Guest→guest copies of overlapping
 * ranges produce an unspecified (but deterministic) result.
 *
 * Completion: after the last step (or the failure) the device writes a struct
 * mdevmig_dma_cmpl to the descriptor's cmpl address, then advances HEAD and SEQ and
 * raises MDEVMIG_INT_DONE (unless the descriptor asked for MDEVMIG_DMA_F_NO_IRQ and
 * succeeded) and, for a failure, MDEVMIG_INT_ERROR. If the completion write faults,
 * ERR_DMA counts it and MDEVMIG_INT_ERROR is raised.
 * --------------------------------------------------------------------------------- */
#define MDEVMIG_DMA_STEP_BYTES		(64u << 10)
#define MDEVMIG_DMA_MAX_LEN		(1u << 30)

/* Opcodes: src and dst are a guest IOVA (G) or a device-memory byte offset (D). */
#define MDEVMIG_DMA_OP_COPY_TO_DEV	1	/* src G -> dst D, len bytes */
#define MDEVMIG_DMA_OP_COPY_FROM_DEV	2	/* src D -> dst G, len bytes */
#define MDEVMIG_DMA_OP_COPY_GUEST	3	/* src G -> dst G, len bytes */
#define MDEVMIG_DMA_OP_FILL		4	/* dst D: len bytes of pattern; byte i of the
						 * range is byte (i % 8) of pattern (LE) */
#define MDEVMIG_DMA_OP_HASH		5	/* XXH64 (seed 0) of src D, len bytes; the
						 * 8-byte LE result is written at dst G */
#define MDEVMIG_DMA_OP_MAX		5

/* Descriptor flags. */
#define MDEVMIG_DMA_F_NO_IRQ		(1u << 0)	/* no MDEVMIG_INT_DONE on success */
#define MDEVMIG_DMA_F_ALL		MDEVMIG_DMA_F_NO_IRQ

struct mdevmig_dma_desc {
	__u32 opcode;		/* MDEVMIG_DMA_OP_* */
	__u32 flags;		/* MDEVMIG_DMA_F_* */
	__aligned_u64 src;	/* G or D per opcode; 0 for FILL */
	__aligned_u64 dst;	/* G or D per opcode */
	__aligned_u64 len;	/* bytes, <= MDEVMIG_DMA_MAX_LEN; 0 is a valid no-op */
	__aligned_u64 pattern;	/* FILL only, else 0 */
	__aligned_u64 cmpl;	/* IOVA of this descriptor's struct mdevmig_dma_cmpl */
	__aligned_u64 user_data; /* copied into the completion, not interpreted */
	__aligned_u64 rsvd;	/* 0 */
};

/* Completion status. */
#define MDEVMIG_DMA_ST_OK		0
#define MDEVMIG_DMA_ST_BAD_OPCODE	1
#define MDEVMIG_DMA_ST_BAD_DESC		2
#define MDEVMIG_DMA_ST_BAD_RANGE	3
#define MDEVMIG_DMA_ST_READ_FAULT	4	/* reading guest memory faulted */
#define MDEVMIG_DMA_ST_WRITE_FAULT	5	/* writing guest memory faulted */
#define MDEVMIG_DMA_ST_PENDING		0xffffffffu	/* never written by the device:
							 * drivers may pre-fill status
							 * with it and poll */

struct mdevmig_dma_cmpl {
	__u32 status;		/* MDEVMIG_DMA_ST_* */
	__u32 seq;		/* value of SEQ when this descriptor completed */
	__aligned_u64 user_data; /* from the descriptor */
	__aligned_u64 bytes_done; /* bytes processed (len on success) */
	__aligned_u64 rsvd;	/* written as 0 */
};

/* ---------------------------------------------------------------------------------
 * State stream (DESIGN.md §5): the device's saved state, as produced by the vendor/
 * writers and consumed by the vendor/ loader, carried inside the VFIO migration data
 * (v2 data_fd or the v1 region) unchanged.
 *
 * The stream is a sequence of records, each a struct mdevmig_rec_hdr followed by
 * `length` payload bytes. There is no padding between records. Order:
 *   1. COMPAT, exactly once, first: identifies the model and instance geometry; a
 *      destination that does not match rejects the stream here.
 *   2. PAGES, any number, in any order, possibly the same page several times (the
 *      last copy wins): device memory, applied as each record arrives.
 *   3. CONFIG, REGS, ENGINE, IRQ, each exactly once, in any order (they may also be
 *      interleaved with PAGES): staged by the loader and applied together when END
 *      arrives, after checking they are consistent with each other.
 *   4. END, last; nothing may follow it.
 * Unknown record types are skipped if not MDEVMIG_REC_F_MANDATORY, else the load
 * fails. Known types must carry MDEVMIG_REC_F_MANDATORY and their exact length.
 * Every record's payload must fit in MDEVMIG_REC_MAX_PAYLOAD (a destination may
 * accept less, but never less than one page record of one page; the loader is given
 * a buffer of MDEVMIG_LOADER_BUF_SIZE bytes to accept every record a writer emits).
 * --------------------------------------------------------------------------------- */
#define MDEVMIG_STREAM_VERSION		1

#define MDEVMIG_REC_MAGIC		0x4d47u		/* high half of every tag */
#define MDEVMIG_REC_TAG(type)		((MDEVMIG_REC_MAGIC << 16) | (type))
#define MDEVMIG_REC_COMPAT		MDEVMIG_REC_TAG(1)
#define MDEVMIG_REC_CONFIG		MDEVMIG_REC_TAG(2)
#define MDEVMIG_REC_REGS		MDEVMIG_REC_TAG(3)
#define MDEVMIG_REC_ENGINE		MDEVMIG_REC_TAG(4)
#define MDEVMIG_REC_IRQ			MDEVMIG_REC_TAG(5)
#define MDEVMIG_REC_PAGES		MDEVMIG_REC_TAG(6)
#define MDEVMIG_REC_END			MDEVMIG_REC_TAG(7)

#define MDEVMIG_REC_F_MANDATORY		(1u << 0)	/* fail if the type is unknown */
#define MDEVMIG_REC_F_ALL		MDEVMIG_REC_F_MANDATORY

struct mdevmig_rec_hdr {
	__u32 tag;		/* MDEVMIG_REC_TAG(type) */
	__u32 flags;		/* MDEVMIG_REC_F_*; other bits 0 */
	__aligned_u64 length;	/* payload bytes following this header */
	__aligned_u64 hash;	/* XXH64 (seed 0) of the payload */
};

/* Largest payload: one page record of MDEVMIG_REC_PAGES_MAX pages. */
#define MDEVMIG_REC_PAGES_MAX		256
#define MDEVMIG_REC_MAX_PAYLOAD		(16u + MDEVMIG_REC_PAGES_MAX * MDEVMIG_PAGE_SIZE)
#define MDEVMIG_LOADER_BUF_SIZE		MDEVMIG_REC_MAX_PAYLOAD

/* COMPAT payload. The loader requires every field to match the destination. */
struct mdevmig_rec_compat {
	__u32 stream_version;	/* MDEVMIG_STREAM_VERSION */
	__u32 model_version;	/* MDEVMIG_MODEL_VERSION */
	__u32 type_id;		/* mdev type of the source instance */
	__u32 page_size;	/* MDEVMIG_PAGE_SIZE */
	__aligned_u64 mem_size;	/* device memory bytes */
	__aligned_u64 rsvd;	/* 0 */
};

/*
 * PAGES payload: this header, then count * MDEVMIG_PAGE_SIZE bytes of device memory
 * starting at byte first_page * MDEVMIG_PAGE_SIZE. 1 <= count <= MDEVMIG_REC_PAGES_MAX,
 * first_page + count <= memory pages.
 */
struct mdevmig_rec_pages {
	__aligned_u64 first_page;
	__u32 count;
	__u32 rsvd;		/* 0 */
};

/*
 * CONFIG payload: the writable state of config space (the read-only fields are a
 * function of the model version and instance geometry, checked by COMPAT). Values
 * must be ones a guest could have written (masked as the registers mask them).
 */
struct mdevmig_rec_config {
	__u16 command;		/* command register */
	__u8 cache_line;	/* cache line size */
	__u8 intr_line;		/* interrupt line */
	__u32 bar0;		/* BAR0 as read, without flag bits */
	__aligned_u64 bar2;	/* BAR2/BAR3 as read, without flag bits */
	__u16 msi_ctrl;		/* MSI enable (bit 0) and multiple message enable (6:4) */
	__u16 msi_data;
	__u32 msi_mask;
	__aligned_u64 msi_addr;
	__aligned_u64 rsvd;	/* 0 */
};

/* REGS payload: the BAR0 registers that hold state (see the register map). */
struct mdevmig_rec_regs {
	__u32 ctrl;		/* MDEVMIG_CTRL_ENABLE only */
	__u32 int_status;
	__u32 int_mask;
	__u32 rsvd0;		/* 0 */
	__u32 scratch[MDEVMIG_NR_SCRATCH];
	__aligned_u64 ring_base;
	__u32 ring_size;
	__u32 ring_head;
	__u32 ring_tail;
	__u32 seq;
	__u32 err_desc;
	__u32 err_dma;
	__u32 err_ring;
	__u32 rsvd1;		/* 0 */
};

/*
 * ENGINE payload: the in-flight descriptor, if any, and how far it got. For a HASH
 * descriptor the XXH64 accumulator travels too (lanes, the partial 32-byte stripe and
 * the byte count, in the algorithm's own terms, so any conforming XXH64
 * implementation can continue it). All fields are 0 when nothing is in flight, and
 * the xxh fields are 0 unless the descriptor is a HASH.
 */
#define MDEVMIG_ENGINE_F_ACTIVE		(1u << 0)

struct mdevmig_rec_engine {
	__u32 flags;		/* MDEVMIG_ENGINE_F_* */
	__u32 rsvd;		/* 0 */
	struct mdevmig_dma_desc desc;	/* the descriptor at RING_HEAD, as fetched */
	__aligned_u64 progress;	/* bytes done, < desc.len */
	__aligned_u64 xxh_total_len;	/* bytes hashed so far (= progress) */
	__aligned_u64 xxh_v[4];		/* accumulator lanes */
	__u8 xxh_mem[32];		/* buffered bytes of a partial stripe */
	__u32 xxh_memsize;		/* = progress % 32 */
	__u32 rsvd2;			/* 0 */
};

/* IRQ payload: interrupt state not already in CONFIG and REGS. */
struct mdevmig_rec_irq {
	__u32 intx_asserted;	/* 0/1, must agree with CONFIG and REGS */
	__u32 msi_pending;	/* pending bits of the MSI capability (masked vectors only) */
};

#endif /* _UAPI_LINUX_MDEVMIG_H */
