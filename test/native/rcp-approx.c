// Derives this machine's RCPSS/RSQRTSS approximation tables and prints them as an AssemblyScript
// module in a compact form (the AMD model's wasm/cpu/simd/rcp-table-amd.ts; the Intel model's
// wasm/cpu/simd/rcp-table.ts came from test/simd/rcptable.c on an Intel family 6 host).
//
//   gcc -O2 -o build/native/rcp-approx test/native/rcp-approx.c
//   build/native/rcp-approx            # derive, verify on all 2^32 inputs (several MXCSR settings), print
//   build/native/rcp-approx --quick    # derive and print, no exhaustive check
//
// The SDM (Vol. 2B RCPSS/RSQRTSS) and the APM (Vol. 4 RCPSS/RSQRTSS) only bound the relative error
// (1.5 * 2^-12) and fix the special cases; the table is the implementation's. What the model assumes,
// and what the exhaustive check confirms (it fails, printing the first mismatches, otherwise):
//   - the result depends only on the input's sign, exponent and the top RCP_BITS (RSQRT: RSQRT_BITS,
//     plus the exponent's parity) fraction bits; the minimal widths are found here by measurement
//     at exponent 127 (and 128), the smallest k for which the low 23 - k fraction bits never matter;
//   - the result's exponent is 253 - e (RCP) or (380 - e) / 2 (RSQRT), its fraction bits 22..11
//     come from the table and bits 10..0 are zero;
//   - specials: a zero or denormal input is a zero (result: infinity of its sign), an RCP result
//     below the normal range is flushed to a zero of the input's sign, a NaN is quieted, 1/inf = 0,
//     rsqrt(+inf) = +0, rsqrt of a negative non-zero value (-inf included) is the QNaN indefinite;
//   - MXCSR (RC, DAZ, FTZ, the masks) has no effect and no exception flag is ever set.
// Compact form: per table, its first entry, then each entry's decrease from the previous one as
// one hex nibble (0..15), packed 16 to a u64 (least significant nibble first).
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline __m128 bits4(uint32_t x) { return _mm_castsi128_ps(_mm_set_epi32(x + 3, x + 2, x + 1, x)); }
static uint32_t rcp1(uint32_t x) {
  uint32_t o;
  float r = _mm_cvtss_f32(_mm_rcp_ss(_mm_castsi128_ps(_mm_cvtsi32_si128((int)x))));
  memcpy(&o, &r, 4);
  return o;
}
static uint32_t rsq1(uint32_t x) {
  uint32_t o;
  float r = _mm_cvtss_f32(_mm_rsqrt_ss(_mm_castsi128_ps(_mm_cvtsi32_si128((int)x))));
  memcpy(&o, &r, 4);
  return o;
}

static int rcp_bits, rsq_bits;
static uint16_t rcp_tab[1 << 13], rsq_tab[1 << 14];

static uint32_t model_rcp(uint32_t x) {
  uint32_t e = (x >> 23) & 0xff, s = x & 0x80000000u, m = x & 0x7fffff;
  if (e == 0) return s | 0x7f800000u;
  if (e == 255) return m ? (x | 0x400000u) : s;
  int oe = 253 - (int)e;
  if (oe <= 0) return s;
  return s | ((uint32_t)oe << 23) | ((uint32_t)rcp_tab[m >> (23 - rcp_bits)] << 11);
}
static uint32_t model_rsq(uint32_t x) {
  uint32_t e = (x >> 23) & 0xff, s = x & 0x80000000u, m = x & 0x7fffff;
  if (e == 0) return s | 0x7f800000u;
  if (e == 255) return m ? (x | 0x400000u) : (s ? 0xffc00000u : 0);
  if (s) return 0xffc00000u;
  int oe = (380 - (int)e) >> 1;
  return ((uint32_t)oe << 23) | ((uint32_t)rsq_tab[((e & 1) << rsq_bits) | (m >> (23 - rsq_bits))] << 11);
}

/** The smallest k such that f(base | m) depends only on the top k bits of the 23-bit fraction m. */
static int minimal_bits(uint32_t (*f)(uint32_t), uint32_t base) {
  for (int k = 1; k <= 23; k++) {
    uint32_t low = (1u << (23 - k)) - 1;
    int ok = 1;
    for (uint32_t m = 0; m < (1u << 23) && ok; m++)
      if (f(base | m) != f(base | (m & ~low))) ok = 0;
    if (ok) return k;
  }
  return 23;
}

static void derive(void) {
  int a = minimal_bits(rcp1, 0x3f800000u);
  int b = minimal_bits(rsq1, 0x3f800000u), c = minimal_bits(rsq1, 0x40000000u);
  rcp_bits = a;
  rsq_bits = b > c ? b : c;
  if (rcp_bits > 13 || rsq_bits > 13) { fprintf(stderr, "rcp-approx: %d/%d index bits: not a table\n", rcp_bits, rsq_bits); exit(1); }
  for (uint32_t i = 0; i < (1u << rcp_bits); i++) {
    uint32_t o = rcp1(0x3f800000u | (i << (23 - rcp_bits)));
    if (((o >> 23) & 0xff) != 126 || (o & 0x7ff)) { fprintf(stderr, "rcp-approx: rcp unexpected %08x\n", o); exit(1); }
    rcp_tab[i] = (o >> 11) & 0xfff;
  }
  for (uint32_t p = 0; p < 2; p++)
    for (uint32_t i = 0; i < (1u << rsq_bits); i++) {
      uint32_t e = p ? 127 : 128; // parity 1 = odd exponent
      uint32_t o = rsq1((e << 23) | (i << (23 - rsq_bits)));
      if (((o >> 23) & 0xff) != 126 || (o & 0x7ff)) { fprintf(stderr, "rcp-approx: rsqrt unexpected %08x\n", o); exit(1); }
      rsq_tab[(p << rsq_bits) | i] = (o >> 11) & 0xfff;
    }
}

/** All 2^32 inputs, four lanes at a time (RCPPS/RSQRTPS), under one MXCSR; returns mismatches. */
static uint64_t verify(uint32_t mxcsr) {
  uint32_t saved = _mm_getcsr();
  uint64_t bad = 0;
  uint32_t out_r[4], out_q[4];
  _mm_setcsr(mxcsr);
  for (uint64_t x = 0; x < 0x100000000ull; x += 4) {
    __m128 v = bits4((uint32_t)x);
    _mm_storeu_ps((float *)out_r, _mm_rcp_ps(v));
    _mm_storeu_ps((float *)out_q, _mm_rsqrt_ps(v));
    for (int k = 0; k < 4; k++) {
      uint32_t xi = (uint32_t)x + k;
      if (out_r[k] != model_rcp(xi) || out_q[k] != model_rsq(xi)) {
        if (bad < 10) fprintf(stderr, "mxcsr %04x x=%08x rcp %08x model %08x rsqrt %08x model %08x\n", mxcsr, xi,
                              out_r[k], model_rcp(xi), out_q[k], model_rsq(xi));
        bad++;
      }
    }
  }
  uint32_t flags = _mm_getcsr() & 0x3f;
  _mm_setcsr(saved);
  if (flags & ~(mxcsr & 0x3f)) { fprintf(stderr, "mxcsr %04x: flags %02x raised\n", mxcsr, flags); bad++; }
  return bad;
}

static void print_table(const char *name, const uint16_t *t, uint32_t n) {
  printf("export const %s_FIRST: u16 = %u;\n", name, t[0]);
  printf("/** %u decreases, 16 nibbles to a u64, least significant first. */\n", n - 1);
  printf("const %s_PACKED: usize = memory.data<u64>([", name);
  uint32_t words = (n - 1 + 15) / 16;
  for (uint32_t w = 0; w < words; w++) {
    uint64_t v = 0;
    for (uint32_t k = 0; k < 16; k++) {
      uint32_t i = 1 + w * 16 + k;
      if (i >= n) break;
      int d = (int)t[i - 1] - (int)t[i];
      if (d < 0 || d > 15) { fprintf(stderr, "rcp-approx: %s[%u] decreases by %d: not nibble-encodable\n", name, i, d); exit(1); }
      v |= (uint64_t)d << (4 * k);
    }
    printf("%s0x%016llx", w % 4 ? ", " : (w ? ",\n  " : "\n  "), (unsigned long long)v);
  }
  printf(",\n]);\n");
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  unsigned eax, ebx, ecx, edx;
  char vendor[13] = {0};
  __get_cpuid(0, &eax, &ebx, &ecx, &edx);
  memcpy(vendor, &ebx, 4); memcpy(vendor + 4, &edx, 4); memcpy(vendor + 8, &ecx, 4);
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  unsigned family = ((eax >> 8) & 0xf) + (((eax >> 8) & 0xf) == 0xf ? (eax >> 20) & 0xff : 0);
  unsigned model = ((eax >> 4) & 0xf) | (((eax >> 8) & 0xf) >= 6 ? ((eax >> 16) & 0xf) << 4 : 0);
  // The module's names carry the vendor (the Intel model's tables live in rcp-table.ts).
  const char *tag = strcmp(vendor, "AuthenticAMD") == 0 ? "AMD" : strcmp(vendor, "GenuineIntel") == 0 ? "INTEL" : "OTHER";
  derive();
  if (!quick) {
    // Default; DAZ|FTZ with all exceptions unmasked; round up; round toward zero with DAZ.
    static const uint32_t settings[] = {0x1f80, 0x8040, 0x5f80, 0x7fc0};
    uint64_t bad = 0;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) bad += verify(settings[i]);
    fprintf(stderr, "rcp-approx: %llu mismatches over 2^32 inputs x 4 MXCSR settings\n", (unsigned long long)bad);
    if (bad) return 1;
  }
  printf("// GENERATED by test/native/rcp-approx.c on a %s family %u (0x%x) model %u (0x%x) host; do not edit.\n",
         vendor, family, family, model, model);
  printf("// RCPSS/RSQRTSS: fraction bits 22..11 of the result, indexed by:\n");
  printf("//   RCP:   the input's fraction bits 22..%d (%d bits);\n", 23 - rcp_bits, rcp_bits);
  printf("//   RSQRT: (exponent is odd) << %d | fraction bits 22..%d (%d bits).\n", rsq_bits, 23 - rsq_bits, rsq_bits);
  printf("// %s over all 2^32 inputs under MXCSR 1F80, 8040, 5F80, 7FC0 (the model: float.ts).\n",
         quick ? "NOT verified (--quick)" : "The model matched RCPPS and RSQRTPS");
  printf("// Stored as the first entry and one nibble per entry: its decrease from the previous one.\n\n");
  printf("export const RCP_BITS_%s = %d;\n", tag, rcp_bits);
  printf("export const RSQRT_BITS_%s = %d;\n\n", tag, rsq_bits);
  char n1[32], n2[32], n3[32];
  snprintf(n1, sizeof n1, "RCP_%s", tag);
  snprintf(n2, sizeof n2, "RSQRT_%s_EVEN", tag);
  snprintf(n3, sizeof n3, "RSQRT_%s_ODD", tag);
  print_table(n1, rcp_tab, 1u << rcp_bits);
  printf("\n");
  print_table(n2, rsq_tab, 1u << rsq_bits);
  printf("\n");
  print_table(n3, rsq_tab + (1u << rsq_bits), 1u << rsq_bits);
  printf("\n/** The tables as u16 entries, decoded once at instantiation. */\n");
  printf("export const RCP_TABLE_%s: usize = memory.data(%u);\n", tag, 2u << rcp_bits);
  printf("export const RSQRT_TABLE_%s: usize = memory.data(%u);\n\n", tag, 4u << rsq_bits);
  printf("function unpack(first: u16, packed: usize, n: u32, out: usize): void {\n"
         "  let v = first;\n"
         "  store<u16>(out, v);\n"
         "  for (let i: u32 = 1; i < n; i++) {\n"
         "    const k = i - 1;\n"
         "    v -= <u16>((load<u64>(packed + ((<usize>k >> 4) << 3)) >> ((<u64>k & 15) << 2)) & 15);\n"
         "    store<u16>(out + (<usize>i << 1), v);\n"
         "  }\n"
         "}\n");
  printf("unpack(%s_FIRST, %s_PACKED, %u, RCP_TABLE_%s);\n", n1, n1, 1u << rcp_bits, tag);
  printf("unpack(%s_FIRST, %s_PACKED, %u, RSQRT_TABLE_%s);\n", n2, n2, 1u << rsq_bits, tag);
  printf("unpack(%s_FIRST, %s_PACKED, %u, RSQRT_TABLE_%s + %u);\n", n3, n3, 1u << rsq_bits, tag, 2u << rsq_bits);
  return 0;
}
