// Reference for the SIMD operation library: runs the real MMX/SSE/SSE2 instructions of this CPU.
// stdin: records of 64 bytes   { u32 op, mxcsr, imm, 0; u8 a[16], b[16], c[16] }
// stdout: records of 32 bytes  { u8 r[16]; u32 mxcsr_after, fault, 0, 0 }
// Each record: LDMXCSR mxcsr; xmm0/1/2 = a/b/c (and mm0/1/2 = their low quadwords for MMX ops),
// rax = low quadword of b, rdi = &r; the instruction; STMXCSR; the result (per the op's kind, see
// test/simd/ops.ts) to r. An unmasked SIMD floating-point exception arrives as SIGFPE (#XM): the
// handler takes MXCSR from the signal frame, r keeps its preset value and fault = 1.
// The per-op cases come from build/simd/sseref-ops.h, generated from test/simd/ops.ts.
// Build: gcc -O1 -mno-red-zone (the 'f' kind pushes RFLAGS) -I build/simd.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

typedef struct { uint32_t op, mxcsr, imm, pad; uint8_t a[16], b[16], c[16]; } rec_in;
typedef struct { uint8_t r[16]; uint32_t mxcsr, fault, pad0, pad1; } rec_out;

static sigjmp_buf jb;
static volatile uint32_t fault_mxcsr;

static void on_fpe(int sig, siginfo_t *si, void *ctx) {
  (void)sig; (void)si;
  ucontext_t *uc = (ucontext_t *)ctx;
  fault_mxcsr = uc->uc_mcontext.fpregs->mxcsr;
  siglongjmp(jb, 1);
}

#define LOAD_MMX "movq (%[pa]), %%mm0\n\tmovq (%[pb]), %%mm1\n\tmovq (%[pc]), %%mm2\n\t"
#define SET_FLAGS "push $0x8d5\n\tpopfq\n\t"
#define STORE_X "movdqu %%xmm0, (%[pr])\n\t"
#define STORE_M "movq %%mm0, (%[pr])\n\t"
#define STORE_G "mov %%rax, (%[pr])\n\t"
#define STORE_F "pushfq\n\tpop %%rax\n\tand $0x8d5, %%eax\n\tmov %%rax, (%[pr])\n\t"
#define STORE_W ""
#define EMMS "emms\n\t"

#define RUN(PRE, INSN, POST)                                                                      \
  __asm__ volatile("ldmxcsr %[mx]\n\t"                                                            \
                   "movdqu (%[pa]), %%xmm0\n\tmovdqu (%[pb]), %%xmm1\n\tmovdqu (%[pc]), %%xmm2\n\t" \
                   "movq (%[pb]), %%rax\n\tmov %[pr], %%rdi\n\t" PRE INSN "\n\t"                    \
                   "stmxcsr %[mxo]\n\t" POST                                                      \
                   : [mxo] "=m"(mxo)                                                              \
                   : [mx] "m"(mx), [pa] "r"(in->a), [pb] "r"(in->b), [pc] "r"(in->c), [pr] "r"(out->r) \
                   : "rax", "rdi", "xmm0", "xmm1", "xmm2", "mm0", "mm1", "mm2", "memory", "cc")

#define PREFILL_A memcpy(out->r, in->a, 16)
#define PREFILL_0 ((void)0)

static void run(const rec_in *in, rec_out *out) {
  uint32_t mx = in->mxcsr, mxo = 0;
  memset(out, 0, sizeof *out);
  if (sigsetjmp(jb, 0)) {
    out->mxcsr = fault_mxcsr;
    out->fault = 1;
    return;
  }
  switch (in->op) {
#include "sseref-ops.h"
  default:
    fprintf(stderr, "sseref: unknown op %u\n", in->op);
    exit(2);
  }
  out->mxcsr = mxo;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fpe;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGFPE, &sa, NULL);

  size_t cap = 1 << 20, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (len == cap) { cap *= 2; buf = realloc(buf, cap); }
    ssize_t k = read(0, buf + len, cap - len);
    if (k < 0) { perror("read"); return 1; }
    if (k == 0) break;
    len += (size_t)k;
  }
  size_t n = len / sizeof(rec_in);
  rec_out *outs = malloc(n * sizeof(rec_out) + 1);
  for (size_t i = 0; i < n; i++) {
    rec_in in;
    memcpy(&in, buf + i * sizeof(rec_in), sizeof in);
    rec_out out;
    run(&in, &out);
    outs[i] = out;
  }
  size_t total = n * sizeof(rec_out), off = 0;
  while (off < total) {
    ssize_t k = write(1, (uint8_t *)outs + off, total - off);
    if (k <= 0) { perror("write"); return 1; }
    off += (size_t)k;
  }
  return 0;
}
