// SPDX-License-Identifier: GPL-2.0
/*
 * lab_dmacopy: a dmaengine client for the guest lab test (tests/lab/guest/). It asks
 * the dmaengine core for a DMA_MEMCPY channel of mdevmig_guest, copies buffers through
 * it with the streaming DMA API, and checks every byte, the bytes around each copy, the
 * results its callbacks get and tx_status(); with big_base and big_size (RAM reserved with
 * memmap=) also one copy longer than the device memory. Loading it runs the checks: insmod fails
 * (-EIO) when one fails. Every check logs a line starting with "lab_dmacopy: ".
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>

#define LAB_GUARD 64  /* bytes after each copy that must stay untouched */
#define LAB_BATCH 300 /* copies in flight at once: more than the ring holds */
#define LAB_BATCH_LEN 4096
#define LAB_TIMEOUT (120 * HZ) /* nested TCG is slow */
#define LAB_POISON 0xa5

struct lab_copy {
  struct completion done;
  struct dmaengine_result res;
  dma_cookie_t cookie;
};

static bool lab_filter(struct dma_chan* chan, void* param) {
  return !strcmp(dev_driver_string(chan->device->dev), "mdevmig_guest");
}

static void lab_callback(void* param, const struct dmaengine_result* res) {
  struct lab_copy* c = param;

  c->res = *res;
  complete(&c->done);
}

static int lab_submit(struct dma_chan* chan, dma_addr_t dst, dma_addr_t src, size_t len,
                      struct lab_copy* c) {
  struct dma_async_tx_descriptor* tx;

  tx = dmaengine_prep_dma_memcpy(chan, dst, src, len, DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
  if (!tx) {
    pr_err("lab_dmacopy: prep_dma_memcpy of %zu bytes failed\n", len);
    return -EIO;
  }
  init_completion(&c->done);
  c->res.result = -1;
  tx->callback_result = lab_callback;
  tx->callback_param = c;
  c->cookie = dmaengine_submit(tx);
  if (dma_submit_error(c->cookie)) {
    pr_err("lab_dmacopy: submit failed (%d)\n", c->cookie);
    return -EIO;
  }
  return 0;
}

/* Waits for @c; checks it ended with @want and @residue, and that tx_status agrees. */
static int lab_wait(struct dma_chan* chan, struct lab_copy* c, enum dmaengine_tx_result want,
                    u32 residue, const char* what) {
  enum dma_status st;

  if (!wait_for_completion_timeout(&c->done, LAB_TIMEOUT)) {
    pr_err("lab_dmacopy: %s: no completion within %d s\n", what, LAB_TIMEOUT / HZ);
    return -EIO;
  }
  if (c->res.result != want || c->res.residue != residue) {
    pr_err("lab_dmacopy: %s: result %d residue %u, want %d residue %u\n", what, c->res.result,
           c->res.residue, want, residue);
    return -EIO;
  }
  st = dmaengine_tx_status(chan, c->cookie, NULL);
  if (st != (want == DMA_TRANS_NOERROR ? DMA_COMPLETE : DMA_ERROR)) {
    pr_err("lab_dmacopy: %s: tx_status %d after result %d\n", what, st, want);
    return -EIO;
  }
  return 0;
}

/* Checks @dst holds @src's @len bytes, followed by LAB_GUARD untouched bytes. */
static int lab_compare(const u8* dst, const u8* src, size_t len, const char* what) {
  size_t i;

  for (i = 0; i < len; i++)
    if (dst[i] != src[i]) {
      pr_err("lab_dmacopy: %s: byte %zu is %#x, want %#x\n", what, i, dst[i], src[i]);
      return -EIO;
    }
  for (i = len; i < len + LAB_GUARD; i++)
    if (dst[i] != LAB_POISON) {
      pr_err("lab_dmacopy: %s: byte %zu past the end changed to %#x\n", what, i, dst[i]);
      return -EIO;
    }
  return 0;
}

/* One copy of @len bytes, waited for and verified. */
static int lab_copy_one(struct dma_chan* chan, struct device* dev, size_t len) {
  struct lab_copy c;
  dma_addr_t s, d;
  u8 *src, *dst;
  char what[32];
  int ret = -ENOMEM;

  snprintf(what, sizeof(what), "copy of %zu bytes", len);
  src = kmalloc(len + LAB_GUARD, GFP_KERNEL);
  dst = kmalloc(len + LAB_GUARD, GFP_KERNEL);
  if (!src || !dst) goto out_free;
  get_random_bytes(src, len + LAB_GUARD);
  memset(dst, LAB_POISON, len + LAB_GUARD);
  s = dma_map_single(dev, src, len, DMA_TO_DEVICE);
  if (dma_mapping_error(dev, s)) goto out_free;
  d = dma_map_single(dev, dst, len + LAB_GUARD, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, d)) goto out_unmap_src;

  ret = lab_submit(chan, d, s, len, &c);
  if (!ret) {
    dma_async_issue_pending(chan);
    ret = lab_wait(chan, &c, DMA_TRANS_NOERROR, 0, what);
  }
  dma_unmap_single(dev, d, len + LAB_GUARD, DMA_FROM_DEVICE);
  if (!ret) ret = lab_compare(dst, src, len, what);
  if (!ret) pr_info("lab_dmacopy: %s: ok\n", what);
out_unmap_src:
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE);
out_free:
  kfree(dst);
  kfree(src);
  return ret;
}

/* LAB_BATCH copies submitted together, one issue_pending, all verified. */
static int lab_copy_batch(struct dma_chan* chan, struct device* dev) {
  const size_t stride = LAB_BATCH_LEN + LAB_GUARD;
  const size_t size = LAB_BATCH * stride;
  struct lab_copy* c;
  dma_addr_t s, d;
  u8 *src, *dst;
  int i, ret = -ENOMEM;

  c = kcalloc(LAB_BATCH, sizeof(*c), GFP_KERNEL);
  src = kmalloc(size, GFP_KERNEL);
  dst = kmalloc(size, GFP_KERNEL);
  if (!c || !src || !dst) goto out_free;
  get_random_bytes(src, size);
  memset(dst, LAB_POISON, size);
  s = dma_map_single(dev, src, size, DMA_TO_DEVICE);
  if (dma_mapping_error(dev, s)) goto out_free;
  d = dma_map_single(dev, dst, size, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, d)) goto out_unmap_src;

  for (i = 0; i < LAB_BATCH; i++) {
    ret = lab_submit(chan, d + i * stride, s + i * stride, LAB_BATCH_LEN, &c[i]);
    if (ret) break;
  }
  dma_async_issue_pending(chan);
  /* Wait for all that were submitted, even after a failure: they write dst. */
  while (i-- > 0) {
    int r = lab_wait(chan, &c[i], DMA_TRANS_NOERROR, 0, "batch copy");

    ret = ret ?: r;
  }
  dma_unmap_single(dev, d, size, DMA_FROM_DEVICE);
  for (i = 0; !ret && i < LAB_BATCH; i++)
    ret = lab_compare(dst + i * stride, src + i * stride, LAB_BATCH_LEN, "batch copy");
  if (!ret)
    pr_info("lab_dmacopy: %d copies of %d bytes in flight together: ok\n", LAB_BATCH,
            LAB_BATCH_LEN);
out_unmap_src:
  dma_unmap_single(dev, s, size, DMA_TO_DEVICE);
out_free:
  kfree(dst);
  kfree(src);
  kfree(c);
  return ret;
}

/*
 * A copy from guest-physical memory that does not exist: the host cannot read it, the
 * device completes with READ_FAULT, and the client must get READ_FAILED with the whole
 * length as residue, tx_status DMA_ERROR, and an untouched destination.
 */
static int lab_copy_fault(struct dma_chan* chan, struct device* dev) {
  const size_t len = 8192;
  const dma_addr_t nowhere = 1ULL << 40;
  struct lab_copy c;
  dma_addr_t d;
  u8* dst;
  size_t i;
  int ret = -ENOMEM;

  dst = kmalloc(len, GFP_KERNEL);
  if (!dst) return -ENOMEM;
  memset(dst, LAB_POISON, len);
  d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE);
  if (dma_mapping_error(dev, d)) goto out_free;
  ret = lab_submit(chan, d, nowhere, len, &c);
  if (!ret) {
    dma_async_issue_pending(chan);
    ret = lab_wait(chan, &c, DMA_TRANS_READ_FAILED, len, "copy from nowhere");
  }
  dma_unmap_single(dev, d, len, DMA_FROM_DEVICE);
  for (i = 0; !ret && i < len; i++)
    if (dst[i] != LAB_POISON) {
      pr_err("lab_dmacopy: copy from nowhere: destination byte %zu changed\n", i);
      ret = -EIO;
    }
  if (!ret)
    pr_info("lab_dmacopy: copy from unbacked memory: READ_FAILED, residue %zu, DMA_ERROR: ok\n",
            len);
out_free:
  kfree(dst);
  return ret;
}

/*
 * A copy longer than the device's own memory (16 MiB): COPY_GUEST moves guest memory to
 * guest memory in the device's steps, never through its memory, so one descriptor may be
 * as long as the device's maximum. No allocator here gives that much contiguous memory
 * (Debian's kernels have no CMA; kmalloc stops at 4 MiB), so the buffers are RAM the
 * guest kernel was told to leave alone (memmap=SIZE$BASE: big_base, big_size), mapped
 * here. The lab guest has no IOMMU and dma-direct maps a physical address to itself, so
 * their DMA addresses are their physical addresses: checked on a kmalloc buffer first.
 */
static unsigned long big_base, big_size;
module_param(big_base, ulong, 0444);
MODULE_PARM_DESC(big_base, "physical base of RAM reserved with memmap= for the long copy");
module_param(big_size, ulong, 0444);
MODULE_PARM_DESC(big_size, "its size in bytes: the copy is half of it (0: no long copy)");

static int lab_copy_big(struct dma_chan* chan, struct device* dev) {
  const size_t len = big_size / 2 - LAB_GUARD;
  const phys_addr_t dst_phys = big_base + big_size / 2;
  struct lab_copy c;
  dma_addr_t probe;
  u64 x, *words;
  u8 *mem, *probe_buf;
  bool identity;
  size_t i;
  char what[48];
  int ret;

  probe_buf = kmalloc(64, GFP_KERNEL);
  if (!probe_buf) return -ENOMEM;
  probe = dma_map_single(dev, probe_buf, 64, DMA_TO_DEVICE);
  identity = !dma_mapping_error(dev, probe) && probe == virt_to_phys(probe_buf);
  if (!dma_mapping_error(dev, probe)) dma_unmap_single(dev, probe, 64, DMA_TO_DEVICE);
  kfree(probe_buf);
  if (!identity) {
    pr_err("lab_dmacopy: DMA addresses are not physical addresses here: no long copy\n");
    return -EIO;
  }
  mem = memremap(big_base, big_size, MEMREMAP_WB);
  if (!mem) {
    pr_err("lab_dmacopy: cannot map %lu bytes at %#lx (memmap=)\n", big_size, big_base);
    return -ENOMEM;
  }
  snprintf(what, sizeof(what), "copy of %zu bytes (reserved RAM)", len);
  words = (u64*)mem;
  x = get_random_u64();
  for (i = 0; i < len / 8; i++) {
    x += 0x9e3779b97f4a7c15ull;
    words[i] = x ^ (x >> 29);
  }
  memset(mem + len / 8 * 8, 0x5a, len - len / 8 * 8);
  memset(mem + big_size / 2, LAB_POISON, len + LAB_GUARD);
  ret = lab_submit(chan, dst_phys, big_base, len, &c);
  if (!ret) {
    dma_async_issue_pending(chan);
    ret = lab_wait(chan, &c, DMA_TRANS_NOERROR, 0, what);
  }
  if (!ret) ret = lab_compare(mem + big_size / 2, mem, len, what);
  if (!ret) pr_info("lab_dmacopy: %s, more than the device memory: ok\n", what);
  memunmap(mem);
  return ret;
}

/* A copy longer than the device takes (its max_seg_size): prep must refuse it. */
static int lab_prep_too_long(struct dma_chan* chan, struct device* dev) {
  const size_t len = (size_t)dma_get_max_seg_size(dev) + 1;
  struct dma_async_tx_descriptor* tx;

  tx = dmaengine_prep_dma_memcpy(chan, 0, 0, len, DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
  if (tx) {
    pr_err("lab_dmacopy: prep of %zu bytes, over the device's maximum, gave a descriptor\n", len);
    /* Never submitted: terminate_all on release frees nothing of it, so it leaks. */
    return -EIO;
  }
  pr_info("lab_dmacopy: prep of %zu bytes (over the device's maximum) refused: ok\n", len);
  return 0;
}

static int __init lab_dmacopy_init(void) {
  static const size_t sizes[] = {1, 4095, 65536 + 3, 1 << 20};
  struct dma_chan* chan;
  struct device* dev;
  dma_cap_mask_t mask;
  unsigned int i;
  int ret = 0;

  dma_cap_zero(mask);
  dma_cap_set(DMA_MEMCPY, mask);
  chan = dma_request_channel(mask, lab_filter, NULL);
  if (!chan) {
    pr_err("lab_dmacopy: no DMA_MEMCPY channel of mdevmig_guest\n");
    return -ENODEV;
  }
  dev = chan->device->dev;
  pr_info("lab_dmacopy: channel %s of %s\n", dma_chan_name(chan), dev_name(dev));

  for (i = 0; !ret && i < ARRAY_SIZE(sizes); i++) ret = lab_copy_one(chan, dev, sizes[i]);
  if (!ret) ret = lab_copy_batch(chan, dev);
  if (!ret && big_size) ret = lab_copy_big(chan, dev);
  if (!ret) ret = lab_prep_too_long(chan, dev);
  if (!ret) ret = lab_copy_fault(chan, dev);
  /* The channel still works after a failed copy. */
  if (!ret) ret = lab_copy_one(chan, dev, 4096);
  dma_release_channel(chan);
  if (ret) {
    pr_err("lab_dmacopy: FAIL\n");
    return -EIO;
  }
  pr_info("lab_dmacopy: all copies verified\n");
  return 0;
}

static void __exit lab_dmacopy_exit(void) {}

module_init(lab_dmacopy_init);
module_exit(lab_dmacopy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("mdevmig lab: memcpy through the mdevmig_guest dmaengine channel");
