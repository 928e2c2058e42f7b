/* locks: the guest side of `hvlab bench sched`, a lock-holder-preemption workload.
 *
 *   locks MODE THREADS SECONDS      MODE: spin | mutex | fork | pipe
 *
 * THREADS threads, thread i pinned to online CPU (i % online CPUs), do MODE's operation for
 * SECONDS of CLOCK_MONOTONIC time, then one line is printed:
 *
 *   locks mode=spin threads=2 ops=123 seconds=0.500 ops_per_s=246.0 spin_iters=45 contended=0 per_thread=60,63
 *
 * spin:  increment a shared counter under a pthread_spinlock_t with a critical section of a few
 *        hundred instructions. A preempted lock holder leaves the other vCPU spinning: spin_iters
 *        counts failed pthread_spin_trylock attempts (each followed by a PAUSE, the instruction
 *        pause-loop exiting watches for).
 * mutex: the same under a pthread_mutex_t (futex: a waiter sleeps in the kernel); contended counts
 *        acquisitions whose trylock failed and went to pthread_mutex_lock.
 * fork:  each thread fork()s a child that _exit(0)s and waits for it: the kernel's locks (mm, page
 *        tables, the task list) are the ones contended, so guest PV spinlocks matter here.
 * pipe:  pairs of threads ping-pong one byte over two pipes (wakeups across vCPUs; an odd thread out
 *        ping-pongs with itself over one pipe). An op is one byte passed on: each thread counts the
 *        bytes it sent and got answered (pinger) or received and answered (ponger).
 *
 * The main thread is not pinned: it sleeps SECONDS and raises a stop flag, so the workers never read
 * the clock in their loops. Built static (build.sh) because the busybox initramfs has no libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_SPIN, MODE_MUTEX, MODE_FORK, MODE_PIPE };
static const char *const mode_names[] = { "spin", "mutex", "fork", "pipe" };

/* Work inside the lock: enough shared state that the critical section is a few hundred
 * instructions (64 read-modify-writes of shared words), so a vCPU is often preempted inside it. */
#define CRITICAL_WORDS 64

struct shared {
  pthread_spinlock_t spin;
  pthread_mutex_t mutex;
  uint64_t counter;
  uint64_t words[CRITICAL_WORDS];
};

struct worker {
  pthread_t thread;
  int index;
  int cpu;
  /* pipe mode: this thread writes write_fd and reads read_fd (its partner the other way round). */
  int write_fd, read_fd;
  int is_ponger;
  uint64_t ops;
  uint64_t spin_iters;
  uint64_t contended;
  int error; /* errno of a failed system call, reported after the run */
} __attribute__((aligned(64))); /* workers write their counters every op: one cache line each */

static enum mode mode;
static struct shared shared;
static atomic_int stop_flag;
static pthread_barrier_t start_barrier;
static int online_cpus_list[1024];
static int online_cpus;

static void die(const char *what) {
  fprintf(stderr, "locks: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int stopping(void) { return atomic_load_explicit(&stop_flag, memory_order_relaxed); }

static void critical_section(uint64_t salt) {
  shared.counter++;
  /* volatile keeps the compiler from folding the loop into a few vector stores. */
  volatile uint64_t *w = shared.words;
  for (int i = 0; i < CRITICAL_WORDS; i++) w[i] = (w[i] + salt) ^ (uint64_t)i;
}

static void run_spin(struct worker *me) {
  while (!stopping()) {
    while (pthread_spin_trylock(&shared.spin) != 0) {
      me->spin_iters++;
      __builtin_ia32_pause();
    }
    critical_section(me->ops);
    pthread_spin_unlock(&shared.spin);
    me->ops++;
  }
}

static void run_mutex(struct worker *me) {
  while (!stopping()) {
    if (pthread_mutex_trylock(&shared.mutex) != 0) {
      me->contended++;
      pthread_mutex_lock(&shared.mutex);
    }
    critical_section(me->ops);
    pthread_mutex_unlock(&shared.mutex);
    me->ops++;
  }
}

static void run_fork(struct worker *me) {
  while (!stopping()) {
    pid_t child = fork();
    if (child < 0) { me->error = errno; return; }
    if (child == 0) _exit(0);
    int status;
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) { me->error = errno; return; }
    }
    me->ops++;
  }
}

/* One round trip per op. The pinger decides when to stop; closing its write end ends the ponger's
 * read with EOF, so neither thread is left blocked. */
static void run_pipe(struct worker *me) {
  char byte = 'x';
  if (me->is_ponger) {
    for (;;) {
      ssize_t n = read(me->read_fd, &byte, 1);
      if (n == 0) break;
      if (n < 0) { if (errno == EINTR) continue; me->error = errno; break; }
      if (write(me->write_fd, &byte, 1) != 1) { me->error = errno; break; }
      me->ops++;
    }
    close(me->write_fd);
    return;
  }
  while (!stopping()) {
    if (write(me->write_fd, &byte, 1) != 1) { me->error = errno; break; }
    ssize_t n;
    while ((n = read(me->read_fd, &byte, 1)) < 0 && errno == EINTR) {}
    if (n != 1) { me->error = n < 0 ? errno : EPIPE; break; }
    me->ops++;
  }
  close(me->write_fd);
}

static void *worker_main(void *arg) {
  struct worker *me = arg;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(me->cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) me->error = errno;
  pthread_barrier_wait(&start_barrier);
  switch (mode) {
  case MODE_SPIN: run_spin(me); break;
  case MODE_MUTEX: run_mutex(me); break;
  case MODE_FORK: run_fork(me); break;
  case MODE_PIPE: run_pipe(me); break;
  }
  return NULL;
}

/* The CPUs this process may run on, in order (the online CPUs of a fresh guest). */
static void find_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) die("sched_getaffinity");
  for (int c = 0; c < CPU_SETSIZE && online_cpus < (int)(sizeof online_cpus_list / sizeof online_cpus_list[0]); c++)
    if (CPU_ISSET(c, &set)) online_cpus_list[online_cpus++] = c;
  if (online_cpus == 0) { fprintf(stderr, "locks: no CPU to run on\n"); exit(1); }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: locks spin|mutex|fork|pipe THREADS SECONDS\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 4) usage();
  int found = 0;
  for (int m = 0; m < 4; m++) if (strcmp(argv[1], mode_names[m]) == 0) { mode = (enum mode)m; found = 1; }
  if (!found) usage();
  char *end;
  long threads = strtol(argv[2], &end, 10);
  if (*end || threads < 1 || threads > 256) { fprintf(stderr, "locks: THREADS must be 1 to 256 (got %s)\n", argv[2]); return 2; }
  double seconds = strtod(argv[3], &end);
  if (*end || !(seconds > 0 && seconds < 86400)) { fprintf(stderr, "locks: SECONDS must be a positive number (got %s)\n", argv[3]); return 2; }

  find_cpus();
  if (pthread_spin_init(&shared.spin, PTHREAD_PROCESS_PRIVATE) != 0) die("pthread_spin_init");
  if (pthread_mutex_init(&shared.mutex, NULL) != 0) die("pthread_mutex_init");
  if (pthread_barrier_init(&start_barrier, NULL, (unsigned)threads + 1) != 0) die("pthread_barrier_init");

  struct worker *workers = aligned_alloc(64, (size_t)threads * sizeof *workers);
  if (!workers) die("aligned_alloc");
  memset(workers, 0, (size_t)threads * sizeof *workers);
  for (int i = 0; i < threads; i++) {
    workers[i].index = i;
    workers[i].cpu = online_cpus_list[i % online_cpus];
  }
  if (mode == MODE_PIPE) {
    for (int i = 0; i < threads; i += 2) {
      int ping[2], pong[2];
      if (pipe(ping) != 0) die("pipe");
      if (i + 1 == threads) { /* the odd one out: write and read back its own pipe */
        workers[i].write_fd = ping[1];
        workers[i].read_fd = ping[0];
        continue;
      }
      if (pipe(pong) != 0) die("pipe");
      workers[i].write_fd = ping[1];
      workers[i].read_fd = pong[0];
      workers[i + 1].read_fd = ping[0];
      workers[i + 1].write_fd = pong[1];
      workers[i + 1].is_ponger = 1;
    }
  }
  for (int i = 0; i < threads; i++) {
    errno = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
    if (errno) die("pthread_create");
  }

  pthread_barrier_wait(&start_barrier);
  double start = now_seconds();
  struct timespec nap = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, &nap) == EINTR) {}
  atomic_store(&stop_flag, 1);
  /* The window ends when the flag is raised: ops finished after it are few (one per thread) and
   * waiting for the last fork or round trip would stretch the time under heavy overcommit. */
  double elapsed = now_seconds() - start;
  for (int i = 0; i < threads; i++) pthread_join(workers[i].thread, NULL);

  uint64_t ops = 0, spin_iters = 0, contended = 0;
  int error = 0;
  for (int i = 0; i < threads; i++) {
    ops += workers[i].ops;
    spin_iters += workers[i].spin_iters;
    contended += workers[i].contended;
    if (workers[i].error) error = workers[i].error;
  }
  if (error) { errno = error; die(mode_names[mode]); }
  /* In spin and mutex mode the shared counter is the lock's check: lost increments mean a broken lock. */
  if ((mode == MODE_SPIN || mode == MODE_MUTEX) && shared.counter != ops) {
    fprintf(stderr, "locks: %s: counter %llu != ops %llu (mutual exclusion failed)\n", mode_names[mode],
      (unsigned long long)shared.counter, (unsigned long long)ops);
    return 1;
  }

  /* One line, one write: other consoles' output must not split it. */
  char line[8192];
  int n = snprintf(line, sizeof line, "locks mode=%s threads=%ld ops=%llu seconds=%.3f ops_per_s=%.1f spin_iters=%llu contended=%llu per_thread=",
    mode_names[mode], threads, (unsigned long long)ops, elapsed, (double)ops / elapsed,
    (unsigned long long)spin_iters, (unsigned long long)contended);
  for (int i = 0; i < threads && n < (int)sizeof line - 32; i++)
    n += snprintf(line + n, sizeof line - (size_t)n, "%s%llu", i ? "," : "", (unsigned long long)workers[i].ops);
  line[n++] = '\n';
  if (write(STDOUT_FILENO, line, (size_t)n) != n) return 1;
  return 0;
}
