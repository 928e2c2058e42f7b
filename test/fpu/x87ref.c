// x87 reference for the float80 library tests: executes real x87 instructions on this machine.
//
// Batch protocol (little-endian), stdin -> stdout, one output record per input record:
//   input  (32 bytes): +0 u16 op  +2 u16 control word  +4 a[10]  +14 b[10]  +24 8 bytes unused
//   output (32 bytes): +0 ST(0)[10]  +10 ST(1)[10]  +20 mem[10]  +30 u16 status word
// Each case starts from FNINIT + FLDCW, pushes its operands (binary ops: b then a, so ST(0) = a,
// ST(1) = b), executes the instruction and ends with FNSAVE (no wait, so an unmasked exception is
// never delivered; FNSAVE also re-initializes the FPU). ST(0)/ST(1) come from the saved image in
// stack order; registers above the stack depth ((8 - TOP) & 7) hold stale data. `mem` is the
// memory operand of stores, pre-filled with 0xA5 so that "not stored" is visible. Loads from
// memory (FLD m32/m64, FILD, FBLD) read their bytes from a.
// Build: gcc -O2 -o build/fpu/x87ref test/fpu/x87ref.c (done by test/fpu-float80.test.ts).

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { unsigned char b[10]; } t80;
typedef struct { unsigned char b[108]; } fsave_t;

enum {
  OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_SQRT, OP_PREM, OP_PREM1, OP_RNDINT, OP_SCALE, OP_XTRACT,
  OP_COM, OP_UCOM, OP_LD32, OP_LD64, OP_ST32, OP_ST64, OP_ILD16, OP_ILD32, OP_ILD64, OP_IST16,
  OP_IST32, OP_IST64, OP_ISTT16, OP_ISTT32, OP_ISTT64, OP_BLD, OP_BSTP, OP_F2XM1, OP_YL2X,
  OP_YL2XP1, OP_PTAN, OP_PATAN, OP_SIN, OP_COS, OP_SINCOS, OP_LDPI, OP_LDL2E, OP_LDL2T, OP_LDLG2,
  OP_LDLN2, OP_XAM, OP_TST, OP_LD80, OP_ST80,
};

#define PRE "fninit\n\tfldcw %[cw]\n\t"
#define POST "\n\tfnsave %[sv]"
#define OUTS [sv] "=m"(sv), [mem] "+m"(mem)
#define INS [cw] "m"(cw), [a] "m"(a), [b] "m"(b)
#define BIN(insn) __asm__ volatile(PRE "fldt %[b]\n\tfldt %[a]\n\t" insn POST : OUTS : INS)
#define UN(insn) __asm__ volatile(PRE "fldt %[a]\n\t" insn POST : OUTS : INS)
#define NONE(insn) __asm__ volatile(PRE insn POST : OUTS : INS)

static void run(const unsigned char *in, unsigned char *out) {
  uint16_t op, cw;
  t80 a, b, mem;
  fsave_t sv;
  memcpy(&op, in, 2);
  memcpy(&cw, in + 2, 2);
  memcpy(&a, in + 4, 10);
  memcpy(&b, in + 14, 10);
  memset(&mem, 0xA5, sizeof mem);
  memset(&sv, 0, sizeof sv);
  switch (op) {
    case OP_ADD: BIN("fadd %%st(1), %%st"); break;
    case OP_SUB: BIN("fsub %%st(1), %%st"); break;
    case OP_MUL: BIN("fmul %%st(1), %%st"); break;
    case OP_DIV: BIN("fdiv %%st(1), %%st"); break;
    case OP_SQRT: UN("fsqrt"); break;
    case OP_PREM: BIN("fprem"); break;
    case OP_PREM1: BIN("fprem1"); break;
    case OP_RNDINT: UN("frndint"); break;
    case OP_SCALE: BIN("fscale"); break;
    case OP_XTRACT: UN("fxtract"); break;
    case OP_COM: BIN("fcom %%st(1)"); break;
    case OP_UCOM: BIN("fucom %%st(1)"); break;
    case OP_LD32: NONE("flds %[a]"); break;
    case OP_LD64: NONE("fldl %[a]"); break;
    case OP_ST32: UN("fsts %[mem]"); break;
    case OP_ST64: UN("fstl %[mem]"); break;
    case OP_ILD16: NONE("filds %[a]"); break;
    case OP_ILD32: NONE("fildl %[a]"); break;
    case OP_ILD64: NONE("fildll %[a]"); break;
    case OP_IST16: UN("fists %[mem]"); break;
    case OP_IST32: UN("fistl %[mem]"); break;
    case OP_IST64: UN("fistpll %[mem]"); break;
    case OP_ISTT16: UN("fisttps %[mem]"); break;
    case OP_ISTT32: UN("fisttpl %[mem]"); break;
    case OP_ISTT64: UN("fisttpll %[mem]"); break;
    case OP_BLD: NONE("fbld %[a]"); break;
    case OP_BSTP: UN("fbstp %[mem]"); break;
    case OP_F2XM1: UN("f2xm1"); break;
    case OP_YL2X: BIN("fyl2x"); break;
    case OP_YL2XP1: BIN("fyl2xp1"); break;
    case OP_PTAN: UN("fptan"); break;
    case OP_PATAN: BIN("fpatan"); break;
    case OP_SIN: UN("fsin"); break;
    case OP_COS: UN("fcos"); break;
    case OP_SINCOS: UN("fsincos"); break;
    case OP_LDPI: NONE("fldpi"); break;
    case OP_LDL2E: NONE("fldl2e"); break;
    case OP_LDL2T: NONE("fldl2t"); break;
    case OP_LDLG2: NONE("fldlg2"); break;
    case OP_LDLN2: NONE("fldln2"); break;
    case OP_XAM: UN("fxam"); break;
    case OP_TST: UN("ftst"); break;
    case OP_LD80: NONE("fldt %[a]"); break;
    case OP_ST80: UN("fstpt %[mem]"); break;
    default: NONE(""); break;
  }
  memcpy(out, sv.b + 28, 10);
  memcpy(out + 10, sv.b + 38, 10);
  memcpy(out + 20, &mem, 10);
  memcpy(out + 30, sv.b + 4, 2);
}

int main(void) {
  enum { CHUNK = 4096, REC = 32 };
  static unsigned char inbuf[CHUNK * REC], outbuf[CHUNK * REC];
  size_t have = 0;
  for (;;) {
    ssize_t n = read(0, inbuf + have, sizeof inbuf - have);
    if (n < 0) { perror("read"); return 1; }
    have += (size_t)n;
    if (n == 0 || have == sizeof inbuf) {
      size_t recs = have / REC;
      for (size_t i = 0; i < recs; i++) run(inbuf + i * REC, outbuf + i * REC);
      size_t off = 0, len = recs * REC;
      while (off < len) {
        ssize_t w = write(1, outbuf + off, len - off);
        if (w <= 0) { perror("write"); return 1; }
        off += (size_t)w;
      }
      have = 0;
      if (n == 0) break;
    }
  }
  return 0;
}
