// SPDX-License-Identifier: GPL-2.0
/*
 * bar2check: the guest's CPU writes the mdevmig device memory (BAR2) through the PCI
 * resource2 file and reads it back (tests/lab/guest/).
 *
 *   bar2check /sys/bus/pci/devices/BDF/resource2 [BYTES]
 *
 * Maps the BAR, writes BYTES (default: all of it) of a pseudo-random sequence seeded
 * per run (so stale contents cannot pass), then reads it all back and compares. Prints
 * one line; exit status 0 when every byte read back is the byte written.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int main(int argc, char** argv) {
  volatile uint64_t* bar;
  uint64_t seed, x, want, got, bytes, i, n;
  struct timespec t0, t1;
  struct stat st;
  int fd;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: bar2check RESOURCE_FILE [BYTES]\n");
    return 2;
  }
  fd = open(argv[1], O_RDWR | O_SYNC);
  if (fd < 0 || fstat(fd, &st)) {
    perror(argv[1]);
    return 1;
  }
  bytes = argc == 3 ? strtoull(argv[2], NULL, 0) : (uint64_t)st.st_size;
  if (!bytes || bytes > (uint64_t)st.st_size || bytes % 8) {
    fprintf(stderr,
            "bar2check: %" PRIu64 " bytes: not a multiple of 8 within the %" PRIu64 "-byte BAR\n",
            bytes, (uint64_t)st.st_size);
    return 2;
  }
  bar = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (bar == MAP_FAILED) {
    perror("bar2check: mmap");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  seed = (uint64_t)t0.tv_nsec ^ ((uint64_t)getpid() << 32);
  n = bytes / 8;
  x = seed;
  for (i = 0; i < n; i++) bar[i] = splitmix64(&x);
  x = seed;
  for (i = 0; i < n; i++) {
    want = splitmix64(&x);
    got = bar[i];
    if (got != want) {
      printf("bar2check: FAIL: byte offset %#" PRIx64 " reads %#" PRIx64 ", wrote %#" PRIx64 "\n",
             i * 8, got, want);
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("bar2check: %" PRIu64 " KiB of BAR2 written and read back through %s (%.1f s)\n",
         bytes >> 10, argv[1],
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
