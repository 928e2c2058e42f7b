// hvlab differential-test oracle: runs x86-64 instruction bytes on this machine's CPU.
//
// Layout (must match emu/difftest/types.ts):
//   0x100000  register block page (guest GPR images, jump target, FXSAVE image, popfq stack)
//   0x200000  code page (RWX), instruction at +0x800, every other byte INT3
//   0x300000  data region (RW, 0x2000 bytes; 16 MiB in bench mode), also the GS base
//
// A case is entered through a hand-written trampoline (below) that loads every GPR and RFLAGS
// and jumps to the instruction; it always ends in a signal (INT3 -> SIGTRAP normally, or a
// fault), whose handler snapshots the guest state from the ucontext and siglongjmps back.
//
// Modes:
//   runner             batch: case records (176 or 688 bytes) on stdin -> result records on stdout
//   runner bench FILE  run FILE at CODE_ADDR once, print one JSON line
//
// Batch protocol (little-endian). Input record, 176 bytes (+512 with an FPU image), until EOF:
//   +0 u8 codeLen (0..15)   +1 u8 code[15]   +16 u64 regs[16] (rax rcx rdx rbx rsp rbp rsi rdi
//   r8..r15)   +144 u64 rflags (only CF PF AF ZF SF DF OF are used; 0x202 is ORed in)
//   +152 u32 dataSeed   +156 u32 flags   +160 u64 0   +168 8 bytes padding
//   flags bit 0 (IN_FLAG_FPU): a 512-byte FXSAVE image (64-bit format) follows at +176; the runner
//     FXRSTORs it before entering the guest and the result carries the image captured at the
//     signal. Without it the guest starts from the default image (FNINIT state: FCW 0x037F,
//     FSW 0, FTW 0; MXCSR 0x1F80; every ST/MM/XMM register 0) and no image is returned, so
//     integer-only cases cost nothing extra. Other flag bits must be 0. The image's MXCSR must
//     not set bits outside the host's MXCSR_MASK (FXRSTOR would #GP): the runner refuses it.
// Output record per case, in order:
//   +0 u16 outcome (0 trap, 1 DE, 2 UD, 3 SEGV, 4 BUS, 5 timeout, 6 other, 7 MF, 8 XM)
//   +2 u16 flags (bit 0: a 512-byte FXSAVE image follows the header)   +4 u32 nDiff
//   +8 u64 regs[16]   +136 u64 rip   +144 u64 rflags (as the kernel reports them)
//   +152 [512-byte FXSAVE image at the signal: ucontext fpregs, the kernel's FXSAVE-format area]
//   then nDiff x u32 (offset << 8 | newByte), ascending offsets in the data region
// Results are flushed whenever the runner is about to block on stdin.
//
// SIGFPE is split by the vector the kernel reports in the signal context (REG_TRAPNO): 0 -> DE,
// 16 -> MF (x87 exception pending from an earlier instruction, raised by the next waiting x87 or
// MMX instruction: the instruction under test did not execute), 19 -> XM (unmasked SIMD
// floating-point exception). Should TRAPNO be unusable, si_code decides: FPE_INTDIV/FPE_INTOVF
// -> DE; FPE_FLT* -> MF when the faulting opcode is x87 (D8-DF, 9B), else XM. An unmasked x87
// exception raised *by* the instruction under test only sets FSW.ES/B: the INT3 that follows is
// not an x87 instruction, so the outcome is 'trap' and the pending state shows in the image.
//
// Build: test/native/build.sh (gcc, PIE, no stack protector: see the signal handler).

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_GS
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define REGBLOCK_ADDR 0x100000UL
#define CODE_ADDR 0x200000UL
#define CODE_OFFSET 0x800UL
#define CODE_SIZE 0x1000UL
#define DATA_ADDR 0x300000UL
#define DATA_SIZE 0x2000UL
#define GS_BASE DATA_ADDR
#define BENCH_DATA_SIZE (16UL << 20)

// Register block offsets. The trampoline addresses these with absolute disp32 operands
// (mov rax, [0x100000]) so that no register is needed to reach them while loading the guest.
#define RB_REGS 0x000    // u64[16], x86 encoding order
#define RB_TARGET 0x080  // u64 jump target
#define RB_FLAGS 0xF00   // u64 RFLAGS image; RSP points here right before popfq

// Only these input RFLAGS bits are honoured (CF PF AF ZF SF DF OF); bit 1 and IF are always set.
#define RFLAGS_INPUT_MASK 0xCD5ULL
#define RFLAGS_FIXED 0x202ULL
#define RFLAGS_AC (1ULL << 18)

#define RB_FXSAVE 0x200 // 512-byte FXSAVE image the trampoline FXRSTORs (16-aligned)

#define IN_RECORD 176
#define IN_FLAG_FPU 1u
#define OUT_HEADER 152
#define OUT_FLAG_FPU 1u
#define FX_SIZE 512
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define WATCHDOG_USEC 200000

enum { OUT_TRAP, OUT_DE, OUT_UD, OUT_SEGV, OUT_BUS, OUT_TIMEOUT, OUT_OTHER, OUT_MF, OUT_XM };
static const char *const outcome_names[] = {"trap", "DE", "UD", "SEGV", "BUS", "timeout", "other",
                                            "MF", "XM"};

// ---------------------------------------------------------------------------------------------
// Trampoline. Entered with a normal call; never returns (the case ends in the signal handler,
// which siglongjmps to the harness). Callee-saved registers and RSP are still saved so that a
// debugger sees a sane host frame. After popfq only MOVs and the indirect JMP run, none of
// which touch flags.
// ---------------------------------------------------------------------------------------------
void hv_enter_guest(void);
uint64_t hv_host_rsp;

__asm__(
    ".text\n"
    ".globl hv_enter_guest\n"
    ".type hv_enter_guest,@function\n"
    "hv_enter_guest:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rsp, hv_host_rsp(%rip)\n"
    // The case's x87/MMX/SSE state (or the default image): FXRSTOR64 is not a waiting
    // instruction, so a pending x87 exception in the image stays pending for the guest.
    "  fxrstor64 0x100200\n"   // REGBLOCK_ADDR + RB_FXSAVE
    "  mov $0x100F00, %rsp\n"   // REGBLOCK_ADDR + RB_FLAGS
    "  popfq\n"
    "  mov 0x100000, %rax\n"
    "  mov 0x100008, %rcx\n"
    "  mov 0x100010, %rdx\n"
    "  mov 0x100018, %rbx\n"
    "  mov 0x100028, %rbp\n"
    "  mov 0x100030, %rsi\n"
    "  mov 0x100038, %rdi\n"
    "  mov 0x100040, %r8\n"
    "  mov 0x100048, %r9\n"
    "  mov 0x100050, %r10\n"
    "  mov 0x100058, %r11\n"
    "  mov 0x100060, %r12\n"
    "  mov 0x100068, %r13\n"
    "  mov 0x100070, %r14\n"
    "  mov 0x100078, %r15\n"
    "  mov 0x100020, %rsp\n"
    "  jmp *0x100080\n"
    ".size hv_enter_guest, .-hv_enter_guest\n");

// ---------------------------------------------------------------------------------------------
// Signal side
// ---------------------------------------------------------------------------------------------
static sigjmp_buf case_env;
static volatile sig_atomic_t in_guest;
static uint64_t host_fs_base;
static uint64_t res_regs[16], res_rip, res_rflags;
static int res_outcome;
static int want_fpu;  // the current case asked for its FXSAVE image
static uint8_t res_fx[FX_SIZE] __attribute__((aligned(16)));
static uint8_t altstack[1 << 16] __attribute__((aligned(64)));

// ucontext gregs index for each GPR in x86 encoding order.
static const int greg_index[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                   REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                   REG_R12, REG_R13, REG_R14, REG_R15};

static inline long raw_syscall2(long nr, long a, long b) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return ret;
}

// With FSGSBASE enabled for user space (Linux 5.9+, HWCAP2 bit 1) the bases can be checked
// with rdfsbase/rdgsbase, so the arch_prctl repair calls are only made when a case broke them.
// (The guest can also use wrfsbase/wrgsbase then; without FSGSBASE those are #UD.)
#define HWCAP2_FSGSBASE_BIT (1UL << 1)
static int have_fsgsbase;

static inline int fs_is(uint64_t base) {
  if (!have_fsgsbase) return 0;
  uint64_t b;
  uint16_t sel;
  __asm__ volatile("rdfsbase %0" : "=r"(b));
  __asm__ volatile("mov %%fs, %0" : "=r"(sel));
  return b == base && sel == 0;
}

static inline int gs_is(uint64_t base) {
  if (!have_fsgsbase) return 0;
  uint64_t b;
  uint16_t sel;
  __asm__ volatile("rdgsbase %0" : "=r"(b));
  __asm__ volatile("mov %%gs, %0" : "=r"(sel));
  return b == base && sel == 0;
}

static void die(const char *msg) {
  fprintf(stderr, "runner: %s%s%s\n", msg, errno ? ": " : "", errno ? strerror(errno) : "");
  exit(2);
}

// Opcode byte of the instruction at p after legacy and REX prefixes.
static uint8_t opcode_at(const uint8_t *p) {
  for (int i = 0; i < 15; i++, p++) {
    uint8_t b = *p;
    if (b == 0x66 || b == 0x67 || b == 0xF0 || b == 0xF2 || b == 0xF3 || b == 0x26 || b == 0x2E ||
        b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65 || (b & 0xF0) == 0x40)
      continue;
    return b;
  }
  return 0;
}

static int outcome_of_sigfpe(const siginfo_t *si, const ucontext_t *uc) {
  switch (uc->uc_mcontext.gregs[REG_TRAPNO]) {
    case 0: return OUT_DE;
    case 16: return OUT_MF;
    case 19: return OUT_XM;
    default: break;
  }
  switch (si->si_code) {
    case FPE_INTDIV: case FPE_INTOVF: return OUT_DE;
    case FPE_FLTDIV: case FPE_FLTOVF: case FPE_FLTUND: case FPE_FLTRES: case FPE_FLTINV:
    case FPE_FLTSUB: {
      const uint8_t *rip = (const uint8_t *)uc->uc_mcontext.gregs[REG_RIP];
      uint64_t a = (uint64_t)rip;
      if (a >= CODE_ADDR && a + 15 <= CODE_ADDR + CODE_SIZE) {
        uint8_t op = opcode_at(rip);
        if ((op >= 0xD8 && op <= 0xDF) || op == 0x9B) return OUT_MF;
      }
      return OUT_XM;
    }
    default: return OUT_OTHER;
  }
}

static int outcome_of_signal(int sig, const siginfo_t *si, const ucontext_t *uc) {
  switch (sig) {
    case SIGTRAP: return OUT_TRAP;
    case SIGFPE: return outcome_of_sigfpe(si, uc);
    case SIGILL: return OUT_UD;
    case SIGSEGV: return OUT_SEGV;
    case SIGBUS: return OUT_BUS;
    case SIGVTALRM: return OUT_TIMEOUT;
    default: return OUT_OTHER;
  }
}

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  // The guest may have set AC (alignment checks would then fault inside this handler) or
  // replaced the FS base (wrfsbase / mov fs) that glibc's TLS and siglongjmp's pointer guard
  // rely on. Repair both before any C code can use them; this is why the runner is built
  // without a stack protector (its canary lives at fs:0x28).
  __asm__ volatile("pushfq\n andq %0, (%%rsp)\n popfq" : : "i"(~RFLAGS_AC) : "memory", "cc");
  if (!fs_is(host_fs_base)) raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, (long)host_fs_base);

  if (!in_guest) {
    // A watchdog tick that raced with the end of a case: nothing to do.
    if (sig == SIGVTALRM) return;
    static const char msg[] = "runner: fatal signal outside a guest case\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    signal(sig, SIG_DFL);
    return;  // re-executes the faulting host instruction and dies with the default action
  }
  in_guest = 0;
  const ucontext_t *uc = (const ucontext_t *)ucv;
  for (int i = 0; i < 16; i++) res_regs[i] = (uint64_t)uc->uc_mcontext.gregs[greg_index[i]];
  res_rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
  res_rflags = (uint64_t)uc->uc_mcontext.gregs[REG_EFL];
  res_outcome = outcome_of_signal(sig, si, uc);
  // The guest's x87/SSE state as the kernel saved it in the signal frame (FXSAVE layout: the
  // legacy area of the XSAVE image). Bytes 464..511 hold the kernel's fpx_sw_bytes.
  if (want_fpu) {
    if (uc->uc_mcontext.fpregs) __builtin_memcpy(res_fx, uc->uc_mcontext.fpregs, FX_SIZE);
    else __builtin_memset(res_fx, 0, FX_SIZE);
  }
  siglongjmp(case_env, 1);
}

static void install_handlers(void) {
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) die("sigaltstack");
  static const int sigs[] = {SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGVTALRM, SIGSYS};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  // No second case signal (e.g. the watchdog) may interrupt the handler's snapshot.
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaddset(&sa.sa_mask, sigs[i]);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigaction(sigs[i], &sa, NULL) != 0) die("sigaction");
}

// A guest `syscall`/`int 0x80` could exit the runner, write to its pipes or unmap things.
// seccomp turns every system call issued from the guest code range into SIGSYS (outcome
// 'other') while the harness's own calls pass. Best effort: without seccomp we still run.
static void install_seccomp(uint64_t lo, uint64_t hi) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
      // if (ip >> 32 != 0) allow
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      // if ((u32)ip < lo || (u32)ip >= hi) allow; else trap
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)lo, 0, 2),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)hi, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    fprintf(stderr, "runner: warning: seccomp unavailable (%s); guest syscalls are not contained\n",
            strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// Machine setup and one run
// ---------------------------------------------------------------------------------------------
static void map_fixed(uint64_t addr, size_t size, int prot) {
  void *p = mmap((void *)addr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  if ((uint64_t)p != addr) {  // kernels before 4.17 treat NOREPLACE as a hint
    errno = 0;
    die("mmap: fixed address is occupied");
  }
}

static void set_gs_base(void) {
  if (gs_is(GS_BASE)) return;
  if (raw_syscall2(SYS_arch_prctl, ARCH_SET_GS, (long)GS_BASE) != 0) {
    errno = 0;
    die("arch_prctl(ARCH_SET_GS)");
  }
}

// FXRSTOR image used when a case brings none: the FNINIT/power-up values.
static uint8_t default_fx[FX_SIZE] __attribute__((aligned(16)));
static uint32_t host_mxcsr_mask;

static void init_fpu_images(void) {
  static uint8_t probe[FX_SIZE] __attribute__((aligned(16)));
  __asm__ volatile("fxsave64 %0" : "=m"(probe));
  uint32_t mask;
  memcpy(&mask, probe + FX_MXCSR_MASK, 4);
  host_mxcsr_mask = mask ? mask : 0xFFBF;  // 0 means the pre-DAZ default (SDM Vol. 1, 11.6.6)
  memset(default_fx, 0, sizeof default_fx);
  uint16_t fcw = 0x037F;
  uint32_t mxcsr = 0x1F80;
  memcpy(default_fx + 0, &fcw, 2);
  memcpy(default_fx + FX_MXCSR, &mxcsr, 4);
}

static void setup_common(uint64_t code_size, uint64_t data_size) {
  init_fpu_images();
  if (syscall(SYS_arch_prctl, ARCH_GET_FS, &host_fs_base) != 0) die("arch_prctl(ARCH_GET_FS)");
  have_fsgsbase = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE_BIT) != 0;
  if (have_fsgsbase && !fs_is(host_fs_base)) {  // glibc sets FS with arch_prctl: selector 0
    errno = 0;
    die("unexpected host FS selector/base");
  }
  map_fixed(REGBLOCK_ADDR, 0x1000, PROT_READ | PROT_WRITE);
  map_fixed(CODE_ADDR, code_size, PROT_READ | PROT_WRITE | PROT_EXEC);
  map_fixed(DATA_ADDR, data_size, PROT_READ | PROT_WRITE);
  set_gs_base();
  install_handlers();
  install_seccomp(CODE_ADDR, CODE_ADDR + code_size);
}

// The watchdog counts the process's user CPU time (ITIMER_VIRTUAL, SIGVTALRM), not wall time: a
// case that spins runs in user mode, while a runner that is merely descheduled (a busy machine) must
// not see its case end as a timeout.
static void arm_watchdog(long usec) {
  struct itimerval it = {.it_interval = {0, 0}, .it_value = {usec / 1000000, usec % 1000000}};
  setitimer(ITIMER_VIRTUAL, &it, NULL);
}

// Runs the guest with the register block already filled; the result lands in res_*.
// `fx`: the 512-byte FXSAVE image to start from (copied into the register block).
static void run_guest(uint64_t entry, uint64_t rflags, const uint8_t *fx, int watchdog) {
  volatile uint64_t *rb = (volatile uint64_t *)REGBLOCK_ADDR;
  memcpy((void *)(REGBLOCK_ADDR + RB_FXSAVE), fx, FX_SIZE);
  rb[RB_TARGET / 8] = entry;
  rb[RB_FLAGS / 8] = (rflags & RFLAGS_INPUT_MASK) | RFLAGS_FIXED;
  if (sigsetjmp(case_env, 1) == 0) {
    if (watchdog) arm_watchdog(WATCHDOG_USEC);
    in_guest = 1;
    hv_enter_guest();
    __builtin_unreachable();
  }
  if (watchdog) arm_watchdog(0);
  // The guest may have loaded a segment register or run wrgsbase: give the next case a clean GS.
  set_gs_base();
}

// ---------------------------------------------------------------------------------------------
// Batch mode
// ---------------------------------------------------------------------------------------------
static uint8_t pattern[DATA_SIZE] __attribute__((aligned(64)));
static uint32_t pattern_seed;
static int pattern_valid;

static uint32_t xorshift32(uint32_t x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

static void fill_pattern(uint32_t seed) {
  if (pattern_valid && pattern_seed == seed) return;
  uint32_t x = seed ? seed : 1;
  for (size_t i = 0; i < DATA_SIZE; i += 4) {
    x = xorshift32(x);
    memcpy(pattern + i, &x, 4);  // host is little-endian x86
  }
  pattern_seed = seed;
  pattern_valid = 1;
}

static uint8_t *outbuf;
static size_t outlen, outcap = 1 << 20;

static void flush_out(void) {
  size_t off = 0;
  while (off < outlen) {
    ssize_t w = write(1, outbuf + off, outlen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write stdout");
    }
    off += (size_t)w;
  }
  outlen = 0;
}

static uint8_t *out_reserve(size_t n) {
  if (outlen + n > outcap) flush_out();
  return outbuf + outlen;  // outcap always exceeds one result (152 + 512 + 4 * 0x2000 bytes)
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

static size_t record_size(const uint8_t *rec) {
  uint32_t flags;
  memcpy(&flags, rec + 156, 4);
  if (flags & ~IN_FLAG_FPU) {
    errno = 0;
    die("bad record: unknown flags");
  }
  return IN_RECORD + ((flags & IN_FLAG_FPU) ? FX_SIZE : 0);
}

// See run_case: how many runs confirm a #UD, and how many #UDs did not reproduce.
#define UD_CONFIRM_RUNS 8
static unsigned long spurious_uds;

static void run_case(const uint8_t *rec) {
  unsigned code_len = rec[0];
  if (code_len > 15) {
    errno = 0;
    die("bad record: codeLen > 15");
  }
  want_fpu = (rd32(rec + 156) & IN_FLAG_FPU) != 0;
  const uint8_t *fx = default_fx;
  if (want_fpu) {
    fx = rec + IN_RECORD;
    if (rd32(fx + FX_MXCSR) & ~host_mxcsr_mask) {
      errno = 0;
      die("bad record: the FXSAVE image's MXCSR sets bits outside the host's MXCSR_MASK");
    }
  }
  uint8_t *code = (uint8_t *)CODE_ADDR;
  uint64_t *rb = (uint64_t *)REGBLOCK_ADDR;
  uint64_t rflags = rd64(rec + 144);
  uint32_t seed = rd32(rec + 152);
  fill_pattern(seed);

  // Every run starts from the case's initial state: code page, registers, data region.
#define RUN_ONCE()                                   \
  do {                                               \
    memset(code, 0xCC, CODE_SIZE);                   \
    memcpy(code + CODE_OFFSET, rec + 1, code_len);   \
    memcpy(rb + RB_REGS / 8, rec + 16, 128);         \
    memcpy((void *)DATA_ADDR, pattern, DATA_SIZE);   \
    run_guest(CODE_ADDR + CODE_OFFSET, rflags, fx, 1); \
  } while (0)
  RUN_ONCE();
  // A #UD is only reported when it reproduces. An architectural #UD is a function of the
  // instruction bytes and the state, which every run restores, so it recurs at the same RIP. A
  // spurious one has been seen on AMD EPYC VMs under CPU contention, for valid instructions (e.g.
  // `sub word [r13+rbp*2-0x7e], sp`) and at the INT3 after an instruction that had completed: this
  // machine is a KVM guest (lscpu: Hypervisor vendor KVM), and a hypervisor that cannot decode or
  // emulate a user-mode instruction it has to handle (KVM's handle_emulation_failure; the SVM
  // soft-interrupt re-injection that decodes the INT3 again) injects #UD into the guest (CPL 3)
  // instead. Nothing in the runner's own state can make a valid instruction #UD: the generator
  // loads no segment register, every run rewrites the code page, registers, FXSAVE image and data,
  // and the handler repairs FS/GS/AC. So a #UD is confirmed by running the case again; one that
  // does not recur is counted (stderr) and the next result is kept.
  if (res_outcome == OUT_UD) {
    for (int attempt = 0; attempt < UD_CONFIRM_RUNS; attempt++) {
      uint64_t ud_rip = res_rip;
      RUN_ONCE();
      if (res_outcome == OUT_UD && res_rip == ud_rip) break; // architectural
      spurious_uds++;
      if (res_outcome != OUT_UD) break;
    }
  }
#undef RUN_ONCE

  uint8_t *o = out_reserve(OUT_HEADER + FX_SIZE + 4 * DATA_SIZE);
  uint32_t n_diff = 0;
  const uint8_t *data = (const uint8_t *)DATA_ADDR;
  size_t fx_len = want_fpu ? FX_SIZE : 0;
  if (want_fpu) memcpy(o + OUT_HEADER, res_fx, FX_SIZE);
  uint8_t *entries = o + OUT_HEADER + fx_len;
  // Compare 8 bytes at a time; most cases touch nothing or one word.
  for (size_t i = 0; i < DATA_SIZE; i += 8) {
    if (rd64(data + i) == rd64(pattern + i)) continue;
    for (size_t j = i; j < i + 8; j++) {
      if (data[j] == pattern[j]) continue;
      uint32_t e = ((uint32_t)j << 8) | data[j];
      memcpy(entries + 4 * n_diff++, &e, 4);
    }
  }
  uint16_t oc = (uint16_t)res_outcome, oflags = want_fpu ? OUT_FLAG_FPU : 0;
  memcpy(o, &oc, 2);
  memcpy(o + 2, &oflags, 2);
  memcpy(o + 4, &n_diff, 4);
  memcpy(o + 8, res_regs, 128);
  memcpy(o + 136, &res_rip, 8);
  memcpy(o + 144, &res_rflags, 8);
  outlen += OUT_HEADER + fx_len + 4 * (size_t)n_diff;
}

static int batch_main(void) {
  setup_common(CODE_SIZE, DATA_SIZE);
  outbuf = malloc(outcap);
  size_t incap = (IN_RECORD + FX_SIZE) * 4096;
  uint8_t *inbuf = malloc(incap);
  if (!outbuf || !inbuf) die("malloc");
  size_t have = 0;
  for (;;) {
    ssize_t r = read(0, inbuf + have, incap - have);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read stdin");
    }
    if (r == 0) break;
    have += (size_t)r;
    size_t off = 0;
    while (have - off >= IN_RECORD) {
      size_t n = record_size(inbuf + off);
      if (have - off < n) break;
      run_case(inbuf + off);
      off += n;
    }
    memmove(inbuf, inbuf + off, have - off);
    have -= off;
    // Flush before blocking on the next read, so an interactive client (one record, wait for
    // the answer) works and a batch client's output pipe keeps draining.
    flush_out();
  }
  if (have != 0) {
    errno = 0;
    die("truncated input record");
  }
  flush_out();
  if (spurious_uds) fprintf(stderr, "runner: %lu #UD(s) did not reproduce on a re-run (spurious; the re-run's result was kept)\n", spurious_uds);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Bench mode
// ---------------------------------------------------------------------------------------------
static int bench_main(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("open bench file");
  struct stat st;
  if (fstat(fd, &st) != 0) die("fstat");
  uint64_t size = ((uint64_t)st.st_size + 0xFFF) & ~0xFFFULL;
  if (size == 0) size = 0x1000;
  if (CODE_ADDR + size > DATA_ADDR) {
    errno = 0;
    die("bench file larger than the 1 MiB code window below DATA_ADDR");
  }
  setup_common(size, BENCH_DATA_SIZE);
  uint8_t *code = (uint8_t *)CODE_ADDR;
  size_t off = 0;
  while (off < (size_t)st.st_size) {
    ssize_t r = read(fd, code + off, (size_t)st.st_size - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("read bench file");
    off += (size_t)r;
  }
  close(fd);

  uint64_t *rb = (uint64_t *)REGBLOCK_ADDR;
  memset(rb, 0, 128);
  rb[4] = DATA_ADDR + BENCH_DATA_SIZE - 4096;  // RSP

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  want_fpu = 0;
  run_guest(CODE_ADDR, 0, default_fx, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("{\"outcome\":\"%s\",\"seconds\":%.9f,\"rax\":\"0x%" PRIx64 "\",\"rbx\":\"0x%" PRIx64
         "\",\"rcx\":\"0x%" PRIx64 "\",\"rdx\":\"0x%" PRIx64 "\",\"rip\":\"0x%" PRIx64 "\"}\n",
         outcome_names[res_outcome], secs, res_regs[0], res_regs[3], res_regs[1], res_regs[2],
         res_rip);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 1) return batch_main();
  if (argc == 3 && strcmp(argv[1], "bench") == 0) return bench_main(argv[2]);
  fprintf(stderr, "usage: runner            (batch: case records on stdin)\n"
                  "       runner bench FILE (run FILE at 0x%lx, print JSON)\n", CODE_ADDR);
  return 2;
}
