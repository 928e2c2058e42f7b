// hvlab ABI: the one definition of the vCPU state layout, exit reasons, lazy-flag operations,
// counter slots and host memory map. This file is plain `export const NAME = integer;` so that it
// compiles unchanged as AssemblyScript (wasm/) and as TypeScript (emu/); both sides import it, and
// test/abi.test.ts checks that the values the compiled module reports match the TypeScript view.
// Keep it that way: no types, no expressions that the two languages could evaluate differently.

// ---- Host linear memory map (byte offsets in the one WebAssembly.Memory) ----
// One instance is one host (ARCHITECTURE.md, section 1): below HOST_POOL_BASE lie the core's own
// areas (VM control blocks, vCPU states, TLBs, caches); from HOST_POOL_BASE on, the host frame pool
// (the host's "physical RAM": guest frames, nested tables, shadow pages); after the pool, the frame
// table (FRAME_* below) and the block staging buffer. An hpa is an offset into the pool.
export const OPEN_BUS_BASE = 0x1000; // 64 bytes of 0xFF: what reads of unbacked physical addresses see
export const BOUNCE_BASE = 0x1100; // staging for accesses split across two discontiguous pages
export const BOUNCE_SLOTS = 4; // 64 bytes each: 16 data, then u64 phys1, u64 phys2, u32 n1, u32 size
export const MMIO_STAGE_BASE = 0x1300; // MMIO_STAGE_SLOTS x 32 bytes: data of device (MMIO) accesses
export const MMIO_STAGE_SLOTS = 8;
export const MSR_DATA = 0x1400; // u64: the value of an MSR access handed to the host (env.msrRead/msrWrite)
export const ZERO_PAGE_BASE = 0x2000; // 4 KiB of zeros, never written: what device reads of untouched guest RAM see
export const CPUID_TABLE_BASE = 0xc010; // configurable CPUID table, written by the host
export const CPUID_ENTRY_SIZE = 24; // leaf, subleaf, eax, ebx, ecx, edx (u32 each)
export const CPUID_MAX_ENTRIES = 64;
export const CPUID_COUNT_ADDR = 0xc000; // u32: number of valid CPUID entries
export const STATIC_DATA_BASE = 0x10000; // asc memoryBase: decode tables and other static data
export const DECODED_CACHE_BASE = 0x400000; // decoded-instruction cache (see wasm/cpu/decode.ts)
export const DECODED_CACHE_ENTRIES = 65536; // direct-mapped by the low bits of RIP
export const DECODED_ENTRY_SIZE = 64;
export const CODE_PAGE_MAP_BASE = 0x810000; // one byte per 4 KiB guest page: 1 = holds decoded code
export const CODE_PAGE_MAP_SIZE = 0x100000;
export const WASM_PAGE = 0x10000;

// ---- VM control blocks (KVM's struct kvm, the per-VM part of a VMCS): one per guest ----
// run(vcpu) finds the vCPU's VM (ST_VM) and loads what is per VM from its block (wasm/vm.ts).
export const VM_AREA_BASE = 0xd000;
export const VM_STRIDE = 0x100;
export const MAX_VMS = 16;
export const VM_RAM_SIZE = 0x00; // u64: guest RAM [0, size) in guest-physical space
export const VM_ROM_SIZE = 0x08; // u64: firmware ROM ending at 4 GiB (0 = none)
export const VM_ROM_HPA = 0x10; // u64: hpa of the ROM's first byte (contiguous in the pool)
export const VM_DIRECT_HPA = 0x18; // u64: --mmu direct: hpa of gpa 0 (RAM is one contiguous run)
export const VM_HOST_MAP = 0x20; // u64: hpa of the VM's gpa -> hpa map (EPT PML4), with VMF_MAPPED
export const VM_VCPU_FIRST = 0x28; // u32: index of the VM's first vCPU (its vCPUs are consecutive)
export const VM_VCPU_COUNT = 0x2c; // u32
export const VM_FLAGS = 0x30; // u32: VMF_* below
export const VMF_DEMAND = 0x1; // guest RAM is allocated on first touch (device DMA asks env.guestFrameFault)
export const VMF_MAPPED = 0x2; // RAM goes through the host map at VM_HOST_MAP (--mmu ept, shadow); else one run at VM_DIRECT_HPA
export const VM_SHADOW_CONTEXT = 0x40; // the shadow MMU's state of this VM while another VM runs (wasm/mmu/shadow.ts)
export const VM_SHADOW_CONTEXT_SIZE = 0xc0;

// ---- The host area: what describes the pool ----
export const HOST_AREA_BASE = 0xe000;
export const HOST_POOL_BYTES = 0xe000; // u64: size of the frame pool
export const HOST_FRAME_TABLE = 0xe008; // u64: linear address of the frame table (after the pool)
export const HOST_FRAME_COUNT = 0xe010; // u32: frames in the pool

// ---- The frame table: one entry per host frame of the pool (emu/hv/mm/frame-pool.ts keeps it) ----
// u8 state (FRAME_*), u8 flags, u16 owner (VM index + 1, 0 = the host), u32 gfn of the first
// mapping, u32 reference count (mappings: dedup shares frames), u32 index + 1 of the next reverse-map
// node (further (vm, gfn) mappings of a shared frame; 0 = none).
export const FRAME_ENTRY_SIZE = 16;
export const FRAME_STATE = 0;
export const FRAME_FLAGS = 1;
export const FRAME_OWNER = 2;
export const FRAME_GFN = 4;
export const FRAME_REFCOUNT = 8;
export const FRAME_RMAP_NEXT = 12;
export const FRAME_FREE = 0;
export const FRAME_GUEST = 1; // guest RAM of its owner, mapped at gfn
export const FRAME_NESTED_TABLE = 2; // a page of the owner's nested (EPT) table
export const FRAME_SHADOW = 3; // the owner's shadow MMU region (shadow pages and their bookkeeping)
export const FRAME_ROM = 4; // the owner's firmware ROM
export const FRAME_RESERVED = 5; // held for a VM's 2 MiB reservation, not yet handed out
export const FRAME_STATE_NAMES = 6;

// ---- The MMU's host memory (wasm/mmu): walk trace, counters, data-cache model, TLBs ----
export const MMU_TRACE_BASE = 0x910000; // MMU_TRACE_MAX records of 32 bytes (see wasm/mmu/accounting.ts)
export const MMU_TRACE_MAX = 64;
export const MMU_TRACE_COUNT = 0x910800; // u32: records written since tracing was armed
export const PROBE_GPA = 0x910900; // u64: results of the probe exports (api.ts probeWalk)
export const PROBE_HPA = 0x910908; // u64
export const PROBE_ERROR = 0x910910; // u32: #PF error code or EPT exit qualification
export const PROBE_PAGE_SHIFT = 0x910914; // u32: guest page size (log2)
export const PROBE_HOST_PAGE_SHIFT = 0x910918; // u32: host page size (log2), 0 under --mmu direct
export const MMU_COUNTERS_BASE = 0x911000; // per vCPU: MMU_COUNTER_SLOTS u64 counters (MC_* below)
export const MMU_COUNTER_SLOTS = 128;
export const CACHE_MODEL_BASE = 0x920000; // data-cache model: one u32 tag + u32 LRU stamp per line
export const CACHE_MODEL_MAX_LINES = 0x20000; // 8 MiB of 64-byte lines
export const TLB_BASE = 0xa20000; // per vCPU TLB_AREA_SIZE bytes: the arrays of wasm/mmu/tlb.ts
export const TLB_AREA_SIZE = 0x140000;
export const TLB_ENTRY_SIZE = 32;
export const TLB_MAX_ENTRIES = 0xa000; // TLB_AREA_SIZE / TLB_ENTRY_SIZE

// ---- vCPU states: after the TLB areas of MAX_VCPUS vCPUs ----
export const MAX_VCPUS = 16;
export const VCPU_AREA_BASE = 0x1e30000;
export const VCPU_STRIDE = 0x2000;
export const HOST_POOL_BASE = 0x2000000; // 32 MiB: the host frame pool starts here (hpa 0)

// ---- The block I/O data path (wasm/blk) ----
// walkChain writes the buffers of one descriptor chain here, in chain order, each checked to lie in
// guest RAM: { u64 gpa, u32 len, u32 flags (BLK_SEG_WRITABLE) } (virtio 1.2, 2.7.5).
export const BLK_SEG_LIST_BASE = 0x1e20000;
export const BLK_SEG_SIZE = 16;
export const BLK_SEG_WRITABLE = 1;
/** Descriptors one chain may have (QEMU's VIRTQUEUE_MAX_SIZE): a longer chain is a fault. */
export const BLK_MAX_CHAIN = 1024;
/** Outcome of the last walk: i32 fault (BLK_FAULT_*), i32 index of the status segment or -1,
 *  i32 readable count (the first segments), i32 writable count (the rest). */
export const BLK_WALK_RESULT = 0x1e24000;
/** 16 bytes: the descriptor being read (copied out of guest memory, which may split it across pages). */
export const BLK_DESC_SCRATCH = 0x1e24100;
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


// ---- vCPU state: byte offsets from the vCPU's base ----
// General registers in x86 encoding order, 8 bytes each: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15.
export const ST_GPR = 0x000;
export const ST_RIP = 0x080;
export const ST_RFLAGS = 0x088; // u64: every flag that is not currently held lazily
export const ST_LAZY_OP = 0x090; // u32: LF_* below; LF_NONE means RFLAGS holds the arithmetic flags
export const ST_LAZY_SIZE = 0x094; // u32: operand size in bytes of the lazy operation
export const ST_LAZY_RES = 0x098; // u64: result
export const ST_LAZY_DST = 0x0a0; // u64: first operand (destination before the operation)
export const ST_LAZY_SRC = 0x0a8; // u64: second operand
export const ST_LAZY_AUX = 0x0b0; // u64: carry-in (ADC/SBB) or the preserved CF (INC/DEC)
export const ST_MODE = 0x0d0; // u32: MODE_* below
export const ST_TSC_OFFSET = 0x0d8; // u64: RDTSC = instructions retired + offset (virtual time)

// Segment registers in x86 encoding order (ES CS SS DS FS GS) then LDTR and TR, 16 bytes each:
// u64 base, u32 limit (byte granular, expanded), u16 selector, u16 attributes (SEG_ATTR_* below).
export const ST_SEG = 0x100;
export const SEG_SLOT = 16;
export const SEG_BASE = 0;
export const SEG_LIMIT = 8;
export const SEG_SELECTOR = 12;
export const SEG_ATTR = 14;
export const SEG_ES = 0;
export const SEG_CS = 1;
export const SEG_SS = 2;
export const SEG_DS = 3;
export const SEG_FS = 4;
export const SEG_GS = 5;
export const SEG_LDTR = 6;
export const SEG_TR = 7;
export const ST_FS_BASE = 0x140; // = ST_SEG + SEG_FS * SEG_SLOT
export const ST_GS_BASE = 0x150; // = ST_SEG + SEG_GS * SEG_SLOT
// Segment attributes: the descriptor's access byte in bits 0-7 (type 0-3, S 4, DPL 5-6, P 7) and
// its flags nibble in bits 12-15 (AVL 12, L 13, D/B 14, G 15), the layout VMX uses for access rights.
export const SEG_ATTR_S = 0x10;
export const SEG_ATTR_P = 0x80;
export const SEG_ATTR_L = 0x2000;
export const SEG_ATTR_DB = 0x4000;
export const SEG_ATTR_G = 0x8000;
export const ST_GDTR_BASE = 0x180; // u64
export const ST_GDTR_LIMIT = 0x188; // u32
export const ST_IDTR_BASE = 0x190; // u64
export const ST_IDTR_LIMIT = 0x198; // u32
export const ST_CR0 = 0x1a0; // u64
export const ST_CR2 = 0x1a8;
export const ST_CR3 = 0x1b0;
export const ST_CR4 = 0x1b8;
export const ST_CR8 = 0x1c0;
export const ST_EFER = 0x1c8;
export const ST_XCR0 = 0x1d0;
export const ST_DR0 = 0x1d8; // DR0-DR3: u64 each (0x1d8, 0x1e0, 0x1e8, 0x1f0)
export const ST_DR6 = 0x1f8; // u32
export const ST_DR7 = 0x1fc; // u32

// Exit record (like the mmap'ed kvm_run): filled by run() before it returns.
export const ST_EXIT_REASON = 0x200; // u32: EXIT_* below
export const ST_EXIT_VECTOR = 0x204; // u32: exception vector (EXIT_EXCEPTION)
export const ST_EXIT_ERROR_CODE = 0x208; // u32
export const ST_EXIT_HAS_ERROR = 0x20c; // u32: 1 when the exception pushes an error code
export const ST_EXIT_ADDR = 0x210; // u64: faulting linear address (#PF), port (I/O), ...
export const ST_EXIT_OPCODE = 0x218; // u32: opcode index of an unimplemented instruction (#UD)
export const ST_EXIT_RIP = 0x220; // u64: address of the instruction that caused the exit
export const ST_EXIT_BYTES = 0x228; // 16 bytes: the instruction bytes (as far as they were fetched)
export const ST_EXIT_LENGTH = 0x238; // u32: number of valid bytes at ST_EXIT_BYTES
export const ST_FETCH_BUF = 0x240; // 16 bytes: instruction bytes gathered across a page boundary
// Port I/O exit (EXIT_IO): like kvm_run.io. For IN, the host writes ST_IO_DATA before the next
// run(), which completes the instruction by loading it into AL/AX/EAX.
export const ST_IO_PORT = 0x250; // u32
export const ST_IO_SIZE = 0x254; // u32: 1, 2 or 4
export const ST_IO_DIR = 0x258; // u32: IO_OUT or IO_IN
export const ST_IO_DATA = 0x25c; // u32
export const ST_IO_PENDING_IN = 0x260; // u32: 1 while an IN waits for the host's data
// External interrupts (like KVM_INTERRUPT / KVM_NMI): the host sets the vector; the core delivers it
// at the first instruction boundary where RFLAGS.IF = 1 and no STI/MOV SS shadow is in effect.
export const ST_IRQ_VECTOR = 0x264; // i32: pending external interrupt vector, or -1
export const ST_NMI_PENDING = 0x268; // u32
export const ST_INTERRUPTED = 0x26c; // u32: interrupts delivered (a counter the host may read)
export const ST_VM = 0x2f8; // u32: index of the vCPU's VM (its control block at VM_AREA_BASE + vm * VM_STRIDE)
export const ST_VM_VCPU = 0x2fc; // u32: the vCPU's index within its VM (0 = the bootstrap processor)
export const ST_INTERRUPT_SHADOW = 0x2ac; // u32: 1 = an STI or MOV SS shadow covers the next instruction
export const IO_OUT = 0;
export const IO_IN = 1;

// MMU state of a vCPU (the VMCS fields KVM keeps for EPT and VPID, plus the PAE PDPTE registers).
export const ST_EXIT_GVA = 0x270; // u64: guest linear address of an EPT violation (when known)
export const ST_EPTP = 0x278; // u64: hpa of the EPT PML4 | EPTP_ENABLE; 0 = --mmu direct (gpa = hpa)
export const ST_VPID = 0x280; // u32: guest tag of this vCPU's TLB entries (KVM's VPID)
export const ST_PDPTE = 0x288; // 4 x u64: PAE PDPTEs, loaded on MOV CR3 (SDM Vol. 3A, 4.4.1)
export const ST_UNIMPLEMENTED_LIN = 0x2b0; // u64: linear address of the last instruction hvlab does not implement
export const ST_IRQ_WINDOW = 0x2a8; // u32: the host asks for EXIT_IRQ_WINDOW as soon as the guest can take an interrupt
// Shadow paging of a vCPU: ST_SHADOW is the hpa of the host's gpa -> hpa map (EPT format, walked by
// the shadow MMU in software) | SHADOW_ENABLE, 0 = off. ST_SHADOW_ROOT: index + 1 of the shadow page
// used as root (0 = none yet); ST_SHADOW_PREV: SHADOW_PREV_ROOTS cached roots (KVM's prev_roots),
// most recent first, 16 bytes each: u64 reserved, u32 index + 1 (0 = empty), u32 pad.
export const ST_SHADOW = 0x2b8;
export const ST_SHADOW_ROOT = 0x2c0; // u32
export const ST_SHADOW_PREV = 0x2c8; // 3 x 16 bytes, up to 0x2f8
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
export const ST_COUNTERS = 0x300;
export const CNT_INSTRUCTIONS = 0; // instructions retired (virtual time)
export const CNT_EXITS = 1;
export const CNT_EXCEPTIONS = 2;
export const CNT_UNIMPLEMENTED = 3; // #UD raised because hvlab does not implement the opcode
export const CNT_SLOTS = 16;

// #UD by opcode: u32 per opcode index (OPC_* space below) at ST_UD_BY_OPCODE.
export const ST_UD_BY_OPCODE = 0x400;
// Opcode index space: one-byte map 0x000-0x0ff, 0F map 0x100-0x1ff, 0F38 map 0x200-0x2ff,
// 0F3A map 0x300-0x3ff.
export const OPC_MAP_0F = 0x100;
export const OPC_MAP_0F38 = 0x200;
export const OPC_MAP_0F3A = 0x300;
export const OPC_COUNT = 0x400;
// ST_UD_BY_OPCODE + OPC_COUNT * 4 = 0x1400 <= VCPU_STRIDE

// x87 / MMX / SSE state, kept in the FXSAVE image layout (SDM Vol. 1, 10.5.1, Table 10-2) so the host
// reads registers at fixed offsets. One deliberate difference: the eight register slots hold the x87
// registers in PHYSICAL order (slot i = R_i; ST(i) = R_((TOP + i) & 7)), so a push or pop changes only
// TOP and the tags; FXSAVE/FXRSTOR/FNSAVE/FRSTOR and the host's image exchange rotate them.
export const ST_FXSAVE = 0x1400;
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
