// Hand-written part of wasm/abi.ts: the constants that are not layout (exit reasons, flags, CR bits,
// EPT bits, counter slots, frame states, ...). wasm/gen/abi-gen.ts copies this file verbatim after the
// offsets it places from the schema (wasm/gen/layout.ts); the schema imports the counts it needs from
// here. Plain `export const NAME = integer;` lines only, as in wasm/abi.ts.

// ---- Host memory ----
export const WASM_PAGE = 0x10000;

// VM_FLAGS bits of a VM control block.
export const VMF_DEMAND = 0x1; // guest RAM is allocated on first touch (device DMA asks env.guestFrameFault)
export const VMF_MAPPED = 0x2; // RAM goes through the host map at VM_HOST_MAP (--mmu ept, shadow); else one run at VM_DIRECT_HPA

// CPUB_* bits of a VM's CPU model (u32 at CPU_MODEL_ADDR + vm * 4; emu/cpu/models.ts sets them from
// the vendor of the VM's CPUID table): where Intel and AMD CPUs differ, a set bit selects AMD's way.
export const CPUB_CALL_TARGET_FIRST = 0x1; // near CALL: #GP on a non-canonical target before the return address is stored
export const CPUB_REP_ZERO_COUNT_NO_WRITE = 0x2; // REP string, 67h, ECX = 0: RCX/RSI/RDI are not written
export const CPUB_APPROX_AMD = 0x4; // RCPPS/RCPSS/RSQRTPS/RSQRTSS use the AMD tables (wasm/cpu/simd/rcp-table-amd.ts)
export const CPUB_X87_STORE_FAULT_FIRST = 0x8; // x87 store with an unmasked IE/OE/UE: the destination's fault is still taken
export const CPUB_AMD_MSRS = 0x10; // AMD's MSRs that every AMD CPU has without a CPUID bit (wasm/cpu/ops/system.ts)

// Frame states (the FRAME_STATE byte of a frame-table entry).
export const FRAME_FREE = 0;
export const FRAME_GUEST = 1; // guest RAM of its owner, mapped at gfn
export const FRAME_NESTED_TABLE = 2; // a page of the owner's nested (EPT) table
export const FRAME_SHADOW = 3; // the owner's shadow MMU region (shadow pages and their bookkeeping)
export const FRAME_ROM = 4; // the owner's firmware ROM
export const FRAME_RESERVED = 5; // held for a VM's 2 MiB reservation, not yet handed out
export const FRAME_STATE_NAMES = 6;

// ---- The block I/O data path (wasm/blk) ----
export const BLK_SEG_WRITABLE = 1;
// Chain faults, in the order walkChain can find them (emu/devices/virtio/virtqueue.ts names them).
export const BLK_FAULT_NONE = 0;
export const BLK_FAULT_INDEX = 1;
export const BLK_FAULT_LOOP = 2;
export const BLK_FAULT_OUTSIDE = 3;
export const BLK_FAULT_ORDER = 4;
export const BLK_FAULT_INDIRECT_NOT_NEGOTIATED = 5;
export const BLK_FAULT_INDIRECT_NOT_ALONE = 6;
export const BLK_FAULT_INDIRECT_NESTED = 7;
export const BLK_FAULT_INDIRECT_LENGTH = 8;
export const BLK_FAULT_INDIRECT_OUTSIDE = 9;
export const BLK_FAULT_TOO_LONG = 10;

// Page-size classes of TLB arrays and walk results.
export const PS_4K = 0;
export const PS_2M = 1;
export const PS_1G = 2;
export const TLB_L2 = 3; // array index of the second-level TLB (4 KiB and 2 MiB entries)
export const TLB_ARRAYS = 4;

// Dimensions of a page-table reference: the guest's tables (gva -> gpa) and the host's nested
// (EPT) table (gpa -> hpa). Shadow tables (gva -> hpa, kept by the hypervisor) are a third.
export const DIM_GUEST = 0;
export const DIM_HOST = 1;
export const DIM_SHADOW = 2;
// Events of the shadow MMU in the walk trace (the `dim` byte of a record; see accounting.ts): a
// shadow page fault (gpa = gva), a shadow page created (gpa = its gfn << 12, hpa = its frame,
// entry = its role), an spte written (hpa = where, entry = the value), a guest page table
// write-protected (gpa = its gfn << 12, entry = sptes made read-only).
export const TRACE_SHADOW_FAULT = 3;
export const TRACE_SP_ALLOC = 4;
export const TRACE_SPTE_SET = 5;
export const TRACE_WRITE_PROTECT = 6;

// MMU counters (u64 slots at MMU_COUNTERS_BASE + vcpu * MMU_COUNTER_SLOTS * 8).
export const MC_TLB_HIT = 0; // + array index (PS_4K, PS_2M, PS_1G, TLB_L2)
export const MC_TLB_MISS = 4; // lookups that missed every array and walked
export const MC_WALKS = 5; // completed walks (TLB fills and uncached translations)
export const MC_WALK_FAULTS = 6; // walks that ended in #PF
export const MC_EPT_VIOLATIONS = 7;
export const MC_TLB_FLUSHES = 8;
export const MC_TLB_INVLPG = 9;
export const MC_DATA_ACCESSES = 10; // accesses seen by the data-cache model
export const MC_DATA_MISSES = 11;
export const MC_PT_MISSES = 12; // page-table references that missed the data-cache model
export const MC_NESTED_TLB_HIT = 13; // guest page-table gpas translated by the nested TLB (no host walk)
export const MC_MICRO_TLB_HIT = 15; // accesses answered by the micro-TLB (the last page of each access kind)
export const MC_PDE_CACHE_HIT = 14; // guest walks that started at the PTE (the PDE cache had the page table)
export const MC_REFS = 16; // + dim * 8 + level (1-5): page-table references by dimension and level
export const MC_TLB_FILL = 48; // + page-size class: TLB entries inserted by size (after splintering)
// Shadow paging (--mmu shadow, wasm/mmu/shadow.ts): the hypervisor's exits by cause, handled inside
// the core as KVM handles them in the kernel, and what the shadow MMU did about them.
export const MC_EXIT_SHADOW_PF = 56; // page faults taken to the hypervisor (spte built, or #PF reflected)
export const MC_EXIT_PT_WRITE = 57; // guest writes to write-protected guest page tables, emulated
export const MC_EXIT_CR3 = 58; // MOV to CR3 with paging on
export const MC_EXIT_INVLPG = 59; // INVLPG and INVPCID
export const MC_SHADOW_GUEST_PF = 60; // of the page faults: those reflected to the guest as #PF
export const MC_SHADOW_SP_ALLOC = 61; // shadow pages created
export const MC_SHADOW_SP_ZAP = 62; // shadow pages zapped (freed)
export const MC_SHADOW_FLOODED = 63; // of those: unshadowed by the write-flooding heuristic
export const MC_SHADOW_ZAP_ALL = 64; // the whole shadow MMU dropped (pool full, host map changed)
export const MC_SHADOW_WRPROT = 65; // writable sptes made read-only because their gfn became a page table
export const MC_SHADOW_ROOT_HIT = 66; // CR3 loads that found their root among the cached ones
export const MC_SHADOW_SPTE_SET = 67; // sptes installed (leaf and non-leaf)

// Segment registers in x86 encoding order: slot indices of ST_SEG (SEG_SLOT bytes each).
export const SEG_ES = 0;
export const SEG_CS = 1;
export const SEG_SS = 2;
export const SEG_DS = 3;
export const SEG_FS = 4;
export const SEG_GS = 5;
export const SEG_LDTR = 6;
export const SEG_TR = 7;
// Segment attributes: the descriptor's access byte in bits 0-7 (type 0-3, S 4, DPL 5-6, P 7) and
// its flags nibble in bits 12-15 (AVL 12, L 13, D/B 14, G 15), the layout VMX uses for access rights.
export const SEG_ATTR_S = 0x10;
export const SEG_ATTR_P = 0x80;
export const SEG_ATTR_L = 0x2000;
export const SEG_ATTR_DB = 0x4000;
export const SEG_ATTR_G = 0x8000;

// ST_IO_DIR values.
export const IO_OUT = 0;
export const IO_IN = 1;

// Shadow paging of a vCPU: cached roots at ST_SHADOW_PREV, and the enable bit of ST_SHADOW.
export const SHADOW_PREV_ROOTS = 3;
export const SHADOW_ENABLE = 0x1;
// Role of a shadow page (KVM's kvm_mmu_page_role): the level (1-4), direct (it maps a guest large
// page, or is one of the two upper levels of a 32-bit or PAE guest, rather than shadowing a guest
// table), the access rights of the walk above it, the paging state it was built under, and for the
// guest's 32-bit paging (4-byte gptes) the quadrant: which part of the guest table it shadows.
export const SP_ROLE_LEVEL = 0x7;
export const SP_ROLE_DIRECT = 0x8;
export const SP_ROLE_ACC_W = 0x10;
export const SP_ROLE_ACC_U = 0x20;
export const SP_ROLE_ACC_NX = 0x40;
export const SP_ROLE_CR0_WP = 0x80;
export const SP_ROLE_EFER_NX = 0x100;
export const SP_ROLE_QUADRANT_SHIFT = 9; // 2 bits
export const SP_ROLE_GPTE32 = 0x800; // shadows 32-bit paging (4-byte gptes)
export const SP_ROLE_PAE = 0x1000; // shadows PAE paging (the PDPTEs are registers)
export const SP_ROLE_LEGACY_TOP = 0x2000; // levels 4 and 3 of a 32-bit or PAE guest's shadow: no guest table
export const SP_ROLE_VCPU_SHIFT = 14; // 2 bits: the vCPU whose CR3 (and PDPTE registers) a LEGACY_TOP page follows
export const SP_ROLE_VALID = 0x80000000;
export const EPTP_AD = 0x40; // EPTP bit 6: accessed and dirty flags for EPT (SDM Vol. 3C, 28.3.5)
export const EPTP_ENABLE = 0x1; // bit 0 of ST_EPTP (the architectural EPTP's low bits hold the walk length)

// Counters: u64 slots from ST_COUNTERS, index with CNT_* * 8.
export const CNT_INSTRUCTIONS = 0; // instructions retired (virtual time)
export const CNT_EXITS = 1;
export const CNT_EXCEPTIONS = 2;
export const CNT_UNIMPLEMENTED = 3; // #UD raised because hvlab does not implement the opcode
export const CNT_DECODED = 4; // instructions decoded into the decoded-instruction cache (misses not revalidated)
export const CNT_SLOTS = 16;

// #UD by opcode: u32 per opcode index (OPC_* space below) at ST_UD_BY_OPCODE.
// Opcode index space: one-byte map 0x000-0x0ff, 0F map 0x100-0x1ff, 0F38 map 0x200-0x2ff,
// 0F3A map 0x300-0x3ff.
export const OPC_MAP_0F = 0x100;
export const OPC_MAP_0F38 = 0x200;
export const OPC_MAP_0F3A = 0x300;
export const OPC_COUNT = 0x400;

// x87 / MMX / SSE state, kept in the FXSAVE image layout (SDM Vol. 1, 10.5.1, Table 10-2) so the host
// reads registers at fixed offsets. One deliberate difference: the eight register slots hold the x87
// registers in PHYSICAL order (slot i = R_i; ST(i) = R_((TOP + i) & 7)), so a push or pop changes only
// TOP and the tags; FXSAVE/FXRSTOR/FNSAVE/FRSTOR and the host's image exchange rotate them.
export const FX_FCW = 0x00; // u16 x87 control word
export const FX_FSW = 0x02; // u16 x87 status word
export const FX_FTW = 0x04; // u8 abridged tag word (1 bit per register: 1 = valid)
export const FX_FOP = 0x06; // u16 last x87 opcode
export const FX_FIP = 0x08; // u64 last x87 instruction pointer (64-bit format)
export const FX_FDP = 0x10; // u64 last x87 data pointer
export const FX_MXCSR = 0x18; // u32
export const FX_MXCSR_MASK = 0x1c; // u32
export const FX_ST0 = 0x20; // R0-R7 (MM0-MM7 alias their low 64 bits): 16-byte slots, 10 bytes used
export const FX_XMM0 = 0xa0; // XMM0-XMM15: 16 bytes each
export const FXSAVE_SIZE = 512;

// ---- Exit reasons ----
export const EXIT_NONE = 0;
export const EXIT_BUDGET = 1; // the instruction budget ran out
export const EXIT_HLT = 2;
export const EXIT_EXCEPTION = 3; // an exception with no IDT to deliver it to (flat mode)
export const EXIT_SHUTDOWN = 4; // triple fault
export const EXIT_IO = 5; // port I/O: see ST_IO_*
export const EXIT_IRQ_WINDOW = 7; // RFLAGS.IF = 1 and no interrupt shadow: the host may inject now (KVM's interrupt window)
export const EXIT_EPT_VIOLATION = 6; // gpa in ST_EXIT_ADDR, gva in ST_EXIT_GVA, qualification in ST_EXIT_ERROR_CODE
export const EXIT_HYPERCALL = 8; // VMCALL or VMMCALL completed: the host reads RAX (number), RBX, RCX, RDX, RSI and sets RAX
export const EXIT_PAUSE_LOOP = 9; // a PAUSE loop at CPL 0 outlasted ST_PLE_WINDOW (VMX pause-loop exiting)

// EPT violation exit qualification (SDM Vol. 3C, 28.3.3.2, Table 28-7).
export const EPTQ_READ = 0x1;
export const EPTQ_WRITE = 0x2;
export const EPTQ_FETCH = 0x4;
export const EPTQ_READABLE = 0x8; // the entry's R/W/X (bits 3-5): what the translation allowed
export const EPTQ_WRITABLE = 0x10;
export const EPTQ_EXECUTABLE = 0x20;
export const EPTQ_GVA_VALID = 0x80;
export const EPTQ_FINAL = 0x100; // 1: the final gpa of the access (QEMU's GPA fault); 0: a guest page-table reference (GPT)

// EPT entry bits (SDM Vol. 3C, 28.3.2).
export const EPT_R = 0x1;
export const EPT_W = 0x2;
export const EPT_X = 0x4;
export const EPT_MEMTYPE_WB = 0x30; // bits 5:3 = 6 on leaves
export const EPT_LARGE = 0x80; // bit 7: a 1 GiB (PDPTE) or 2 MiB (PDE) leaf
export const EPT_ACCESSED = 0x100; // bit 8, with EPTP_AD: set by the walk on every entry it uses
export const EPT_DIRTY = 0x200; // bit 9, with EPTP_AD: set on the leaf of a write
export const EPT_ADDR_MASK_LO = 0xfffff000; // with bits 51:32: the frame address

// ---- CPU modes ----
export const MODE_FLAT64 = 0; // test harness: 64-bit, CPL 3, exceptions exit instead of being delivered
export const MODE_ARCH = 1; // architectural: real/protected/long mode from CR0, EFER and CS

// ---- Memory access kinds (translate) ----
export const ACC_READ = 0;
export const ACC_WRITE = 1;
export const ACC_FETCH = 2;

// ---- Exception vectors (Intel SDM Vol. 3A, 6.3.1) ----
export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_BP = 3;
export const VEC_OF = 4;
export const VEC_BR = 5;
export const VEC_UD = 6;
export const VEC_NM = 7;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MF = 16;
export const VEC_AC = 17;
export const VEC_XM = 19;

// ---- Lazy flag operations ----
export const LF_NONE = 0;
export const LF_ADD = 1;
export const LF_ADC = 2;
export const LF_SUB = 3; // also CMP and NEG (as 0 - x)
export const LF_SBB = 4;
export const LF_LOGIC = 5; // AND/OR/XOR/TEST: CF=OF=0
export const LF_INC = 6;
export const LF_DEC = 7;
export const LF_SHIFT = 8; // SHL/SAL/SHR/SAR: CF and OF precomputed in LAZY_AUX (bit 0, bit 1); AF = 0

// ---- RFLAGS bits ----
export const FLAG_CF = 0x1;
export const FLAG_FIXED1 = 0x2;
export const FLAG_PF = 0x4;
export const FLAG_AF = 0x10;
export const FLAG_ZF = 0x40;
export const FLAG_SF = 0x80;
export const FLAG_TF = 0x100;
export const FLAG_IF = 0x200;
export const FLAG_DF = 0x400;
export const FLAG_OF = 0x800;
export const FLAG_IOPL = 0x3000;
export const FLAG_NT = 0x4000;
export const FLAG_RF = 0x10000;
export const FLAG_VM = 0x20000;
export const FLAG_AC = 0x40000;
export const FLAG_VIF = 0x80000;
export const FLAG_VIP = 0x100000;
export const FLAG_ID = 0x200000;
export const FLAGS_ARITH = 0x8d5; // CF PF AF ZF SF OF

// ---- Control registers ----
export const CR0_PE = 0x1;
export const CR0_MP = 0x2;
export const CR0_EM = 0x4;
export const CR0_TS = 0x8;
export const CR0_ET = 0x10;
export const CR0_NE = 0x20;
export const CR0_WP = 0x10000;
export const CR0_AM = 0x40000;
export const CR0_PG = 0x80000000;
export const EFER_SCE = 0x1;
export const EFER_LME = 0x100;
export const EFER_LMA = 0x400;
export const EFER_NXE = 0x800;

// ---- Decoder attribute byte per opcode index (generated from wasm/cpu/isa-table.ts) ----
export const ATTR_MODRM = 0x1; // a ModRM byte follows the opcode
export const ATTR_IMM_SHIFT = 1; // bits 1-3: immediate kind IMM_*
export const ATTR_IMM_MASK = 0x7;
export const ATTR_INVALID64 = 0x10; // the opcode does not exist in 64-bit mode: #UD, not "unimplemented"
export const ATTR_FORM = 0x20; // the instruction table has a form for this opcode
// Bits 6-7: the size of the ModRM memory operand, for segment-limit checks outside 64-bit mode.
export const ATTR_MEMSIZE_SHIFT = 6;
export const MEMSIZE_OSIZE = 0; // the operand size
export const MEMSIZE_BYTE = 1;
export const MEMSIZE_WORD = 2;
export const MEMSIZE_OTHER = 3; // checked by the instruction itself (or not a plain data access)
export const IMM_NONE = 0;
export const IMM_B = 1; // 8 bits
export const IMM_W = 2; // 16 bits
export const IMM_Z = 3; // 16 or 32 bits by operand size (sign-extended to 64)
export const IMM_V = 4; // 16, 32 or 64 bits by operand size (MOV r, imm64)
export const IMM_WB = 5; // 16 bits then 8 bits (ENTER)
export const IMM_MOFFS = 6; // absolute address: 64 bits, or 32 with 67h
export const IMM_D = 7; // always 32 bits (near branch displacements: Intel ignores 66h in 64-bit mode)
