/* memtouch: the guest side of the overcommit bench and tests, a memory-touching workload.
 *
 *   memtouch MIB PASSES [ZERO_PERCENT]
 *
 * Allocates MIB MiB (anonymous memory: every page a first touch), then PASSES times writes every
 * 64-bit word of it with a value derived from its index and the pass, and reads it all back,
 * checking every word and summing them. ZERO_PERCENT of the pages (default 0) are left zero on every
 * pass (written with zeros), so a host that drops zero pages has something to drop. One line:
 *
 *   memtouch mib=64 passes=2 zero_percent=25 ok=1 bad_words=0 checksum=0x... seconds=1.234 mib_per_s=103.7
 *
 * ok=1 only if every word read back is the word written. seconds is CLOCK_MONOTONIC (the guest's
 * clock), from the first write to the last read; mib_per_s counts bytes written plus bytes read.
 * Built static (build.sh): the busybox initramfs has no libc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t word(uint64_t i, uint64_t pass) {
  /* one multiply of (index, pass): never zero, no two words of the buffer alike (so no two pages:
   * no host dedup can fake the result), and cheap, so the run measures memory, not arithmetic */
  return ((i + 1) * 0x9e3779b97f4a7c15ull) ^ ((pass + 1) << 56) ^ 1;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: memtouch MIB PASSES [ZERO_PERCENT]\n"); return 2; }
  long mib = atol(argv[1]), passes = atol(argv[2]), zero = argc > 3 ? atol(argv[3]) : 0;
  if (mib < 1 || passes < 1 || zero < 0 || zero > 100) { fprintf(stderr, "memtouch: bad arguments\n"); return 2; }
  size_t bytes = (size_t)mib << 20, words = bytes / 8, perPage = 4096 / 8;
  uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) { perror("memtouch: mmap"); return 1; }
  uint64_t sum = 0, bad = 0;
  double t0 = now();
  for (long p = 0; p < passes; p++) {
    for (size_t i = 0; i < words; i++) {
      size_t page = i / perPage;
      buf[i] = (page % 100) < (size_t)zero ? 0 : word(i, p);
    }
    for (size_t i = 0; i < words; i++) {
      size_t page = i / perPage;
      uint64_t want = (page % 100) < (size_t)zero ? 0 : word(i, p);
      uint64_t got = buf[i];
      if (got != want) bad++;
      sum += got;
    }
  }
  double s = now() - t0;
  printf("memtouch mib=%ld passes=%ld zero_percent=%ld ok=%d bad_words=%llu checksum=0x%016llx seconds=%.3f mib_per_s=%.1f\n",
         mib, passes, zero, bad == 0, (unsigned long long)bad, (unsigned long long)sum, s, s > 0 ? 2.0 * mib * passes / s : 0.0);
  return bad == 0 ? 0 : 1;
}
