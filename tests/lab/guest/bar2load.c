// SPDX-License-Identifier: GPL-2.0
/*
 * bar2load: the guest's CPU writes the mdevmig device memory (BAR2) at full speed while
 * the VM migrates, keeps its own copy of everything it wrote, and checks it at the end
 * (tests/lab/guest/). It also measures the longest pause it saw in its own loop.
 *
 *   bar2load /sys/bus/pci/devices/BDF/resource2
 *
 * Maps the BAR through the PCI resource file, fills it and a copy in its own memory with
 * a pseudo-random sequence seeded per run, then until SIGTERM or SIGINT writes random
 * 8-byte words at random offsets of the whole BAR (each write to the BAR and the copy),
 * reading CLOCK_MONOTONIC every 16 writes and keeping the longest gap between two
 * readings. At the signal it compares the whole BAR with the copy and prints one line:
 *
 *   bar2load: PASS: N writes in S s (W writes/s), all K KiB of BAR2 as written;
 *   longest pause P ms at T s, G pauses over 20 ms
 *
 * or "bar2load: FAIL: ..." naming the first word that differs. Exit status 0 on PASS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static uint64_t splitmix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t now_ns(void) {
  struct timespec t;

  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(int argc, char** argv) {
  uint64_t seed, x, i, n, v, writes = 0, t0, t, last, gap, max_gap = 0, max_at = 0;
  uint64_t long_gaps = 0;
  volatile uint64_t* bar;
  struct sigaction sa;
  uint64_t* copy;
  struct stat st;
  int fd;

  if (argc != 2) {
    fprintf(stderr, "usage: bar2load RESOURCE_FILE\n");
    return 2;
  }
  fd = open(argv[1], O_RDWR | O_SYNC);
  if (fd < 0 || fstat(fd, &st)) {
    printf("bar2load: FAIL: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  if (st.st_size < 4096 || st.st_size % 8) {
    printf("bar2load: FAIL: %s: a BAR of %lld bytes\n", argv[1], (long long)st.st_size);
    return 1;
  }
  n = (uint64_t)st.st_size / 8;
  bar = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  copy = malloc((size_t)st.st_size);
  if (bar == MAP_FAILED || !copy) {
    printf("bar2load: FAIL: cannot map %s or allocate its copy: %s\n", argv[1], strerror(errno));
    return 1;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  t0 = now_ns();
  seed = t0 ^ ((uint64_t)getpid() << 32);
  x = seed;
  for (i = 0; i < n; i++) bar[i] = copy[i] = splitmix64(&x);
  last = now_ns();
  while (!stop) {
    for (int k = 0; k < 16; k++) {
      v = splitmix64(&x);
      i = (v >> 17) % n;
      bar[i] = copy[i] = v;
    }
    writes += 16;
    t = now_ns();
    gap = t - last;
    if (gap > max_gap) {
      max_gap = gap;
      max_at = t;
    }
    if (gap > 20000000ull) long_gaps++;
    last = t;
  }
  t = now_ns();
  for (i = 0; i < n; i++) {
    if (bar[i] != copy[i]) {
      printf("bar2load: FAIL: after %" PRIu64 " writes, byte offset %#" PRIx64
             " of BAR2 reads %#" PRIx64 ", wrote %#" PRIx64 "\n",
             writes, i * 8, bar[i], copy[i]);
      return 1;
    }
  }
  printf("bar2load: PASS: %" PRIu64 " writes in %.1f s (%.0f writes/s), all %" PRIu64
         " KiB of BAR2 as written; longest pause %.1f ms at %.1f s, %" PRIu64
         " pauses over 20 ms\n",
         writes, (double)(t - t0) / 1e9, (double)writes * 1e9 / (double)(t - t0), n * 8 / 1024,
         (double)max_gap / 1e6, (double)(max_at - t0) / 1e9, long_gaps);
  return 0;
}
