// SPDX-License-Identifier: GPL-2.0
/*
 * bar2load: the guest's CPU writes the mdevmig device memory (BAR2) at full speed while
 * the VM migrates, keeps its own copy of everything it wrote, and checks it at the end
 * (tests/lab/guest/). It also measures the longest pause it saw in its own loop.
 *
 *   bar2load /sys/bus/pci/devices/BDF/resource2
 *
 * Maps the BAR through the PCI resource file and, until SIGTERM or SIGINT, writes it from
 * the CPU, each 8-byte word to the BAR and to a copy in its own memory: first a fill of
 * the whole BAR in order with a pseudo-random sequence seeded per run, then random words
 * at random offsets. The loop reads CLOCK_MONOTONIC about every millisecond (the number of
 * writes between two readings adapts; it starts at 16), from the first write
 * on (the fill included: a phase shorter than the fill still measures), and keeps the
 * longest gap between two readings. At the signal it compares what it wrote (all of the
 * BAR once the fill is done, else the part filled) with the copy and prints one line:
 *
 *   bar2load: PASS: N writes in S s (W writes/s; fill F s, then R random writes/s),
 *   all K KiB of BAR2 as written (check C s); longest pause P ms at T s, G pauses over 20 ms
 *   (clock read every B writes)
 *
 * ("fill stopped at K KiB of M KiB: those K KiB as written" when the signal came first), or
 * "bar2load: FAIL: ..." naming the first word that differs. Exit status 0 on PASS.
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
  uint64_t long_gaps = 0, filled = 0, random_writes = 0, t_fill = 0, t_check, b, batch = 16;
  char what[160];
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
  last = max_at = t0;
  while (!stop) {
    for (b = 0; b < batch; b++) {
      if (filled < n) {
        bar[filled] = copy[filled] = splitmix64(&x);
        if (++filled == n) t_fill = now_ns();
      } else {
        v = splitmix64(&x);
        i = (v >> 17) % n;
        bar[i] = copy[i] = v;
        random_writes++;
      }
    }
    writes += batch;
    t = now_ns();
    gap = t - last;
    if (gap > max_gap) {
      max_gap = gap;
      max_at = t;
    }
    if (gap > 20000000ull) long_gaps++;
    last = t;
    /*
     * About a millisecond between two readings of the clock: in the nested guest a
     * reading (a trapped timer read) cost as much as hundreds of BAR writes, so a
     * reading every 16 writes measured the clock's speed, not BAR2's.
     */
    if (gap < 500000ull && batch < (1ull << 20))
      batch *= 2;
    else if (gap > 2000000ull && batch > 16)
      batch /= 2;
  }
  t = now_ns();
  for (i = 0; i < filled; i++) {
    if (bar[i] != copy[i]) {
      printf("bar2load: FAIL: after %" PRIu64 " writes, byte offset %#" PRIx64
             " of BAR2 reads %#" PRIx64 ", wrote %#" PRIx64 "\n",
             writes, i * 8, bar[i], copy[i]);
      return 1;
    }
  }
  t_check = now_ns();
  if (filled == n)
    snprintf(what, sizeof(what),
             "fill %.1f s, then %.0f random writes/s), all %" PRIu64 " KiB of BAR2 as written",
             (double)(t_fill - t0) / 1e9,
             t > t_fill ? (double)random_writes * 1e9 / (double)(t - t_fill) : 0.0, n * 8 / 1024);
  else
    snprintf(what, sizeof(what),
             "fill stopped at %" PRIu64 " KiB of %" PRIu64 " KiB), those %" PRIu64
             " KiB of BAR2 as written",
             filled * 8 / 1024, n * 8 / 1024, filled * 8 / 1024);
  printf("bar2load: PASS: %" PRIu64
         " writes in %.1f s (%.0f writes/s; %s (check %.1f s); "
         "longest pause %.1f ms at %.1f s, %" PRIu64 " pauses over 20 ms (clock read every %" PRIu64
         " writes)\n",
         writes, (double)(t - t0) / 1e9, (double)writes * 1e9 / (double)(t - t0), what,
         (double)(t_check - t) / 1e9, (double)max_gap / 1e6, (double)(max_at - t0) / 1e9, long_gaps,
         batch);
  return 0;
}
