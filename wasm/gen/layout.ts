// The memory layout of the core, as a typed schema: the regions of the host linear memory below the
// frame pool, and the structs that live in them (vCPU state, VM control block, host area, frame-table
// entry). wasm/gen/abi-gen.ts places every region and field (declaration order, natural alignment,
// or an explicit `at` where code depends on a fixed position), checks that nothing overlaps, and emits
// wasm/abi.ts. Do not edit wasm/abi.ts by hand: change this file and run `npm run gen`.
//
// Every struct field has a class, so that save/restore can serialize from this same schema:
//   'arch'      architectural state of the guest: registers, segments, CRs, MSR-visible state, FPU,
//               pending events;
//   'host'      set by the VMM: VM index, EPTP, VPID, shadow configuration, the memory map;
//   'transient' exit record, staging buffers, counters, caches the core rebuilds.
import { CNT_SLOTS, OPC_COUNT, SHADOW_PREV_ROOTS, FXSAVE_SIZE } from './abi-constants.ts';

export type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64';
export type FieldClass = 'arch' | 'host' | 'transient';

/** A named integer the generator emits as it is (a count, a stride, a size). */
export interface Param { name: string; value: number; hex?: boolean; doc?: string; lead?: string[] }

export interface Field {
  name: string; // emitted as the struct's prefix + name
  type: Scalar | Struct;
  count?: number; // an array of `count` elements
  align?: number; // default: the natural alignment of the element type
  at?: number; // pinned offset (must not lie below the end of the previous field)
  class: FieldClass;
  doc?: string; // trailing comment of the emitted line
  lead?: string[]; // comment lines before it
}

/** A second name for a place inside an earlier field (e.g. ST_FS_BASE inside ST_SEG); not storage. */
export interface Alias { alias: string; of: string; plus: number; doc?: string; lead?: string[] }

export interface Struct {
  name: string; // for messages
  prefix: string; // of the emitted names
  fields: Array<Field | Alias>;
  stride?: Param; // the room one instance has; the generator fails if the fields exceed it
  params?: Param[]; // emitted after the fields
}

export interface Region {
  label: string; // for messages
  base?: string; // the emitted name of its first byte (none: not emitted)
  size: number;
  align: number;
  at?: number; // pinned base
  doc?: string;
  lead?: string[];
  params?: Param[]; // emitted after the base
  struct?: Struct; // what lies in it; `absolute`: its fields are emitted as addresses
  absolute?: boolean;
}

export const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8 };

const KiB = 1024, MiB = 1024 * KiB;

// ---- Counts and strides (emitted with their regions) ----
export const BOUNCE_SLOTS = 4, BOUNCE_SLOT_SIZE = 64;
export const MMIO_STAGE_SLOTS = 8, MMIO_STAGE_SLOT_SIZE = 32;
export const CPUID_ENTRY_SIZE = 24, CPUID_MAX_ENTRIES = 64;
export const MAX_VMS = 16, VM_STRIDE = 0x100, VM_SHADOW_CONTEXT_SIZE = 0xc0;
export const DECODED_CACHE_ENTRIES = 65536, DECODED_ENTRY_SIZE = 64;
/** One byte per host frame: 1 MiB covers a 4 GiB pool, all a 32-bit WebAssembly memory can hold. */
export const CODE_FRAME_MAP_SIZE = 0x100000;
export const MMU_TRACE_MAX = 64, MMU_TRACE_RECORD = 32;
export const MMU_COUNTER_SLOTS = 128;
export const CACHE_MODEL_MAX_LINES = 0x20000, CACHE_LINE_STATE = 8;
export const TLB_AREA_SIZE = 0x140000, TLB_ENTRY_SIZE = 32;
export const BLK_SEG_SIZE = 16, BLK_MAX_CHAIN = 1024;
export const MAX_VCPUS = 16, VCPU_STRIDE = 0x2000;
export const FRAME_ENTRY_SIZE = 16;
/** 32 MiB: the host frame pool starts here (hpa 0); every region lies below it. */
export const HOST_POOL_BASE = 32 * MiB;
/** asc's memoryBase (asconfig.json): its static data starts here. */
export const STATIC_DATA_BASE = 0x10000;

// ---- Structs ----

/** A segment register: u64 base, u32 limit (byte granular, expanded), u16 selector, u16 attributes. */
export const segment: Struct = {
  name: 'segment register', prefix: 'SEG_',
  stride: { name: 'SEG_SLOT', value: 16 },
  fields: [
    { name: 'BASE', type: 'u64', class: 'arch' },
    { name: 'LIMIT', type: 'u32', class: 'arch' },
    { name: 'SELECTOR', type: 'u16', class: 'arch' },
    { name: 'ATTR', type: 'u16', class: 'arch' },
  ],
};

/** The state of one vCPU, at VCPU_AREA_BASE + vcpu * VCPU_STRIDE. */
export const vcpuState: Struct = {
  name: 'vCPU state', prefix: 'ST_',
  stride: { name: 'VCPU_STRIDE', value: VCPU_STRIDE, hex: true },
  fields: [
    { name: 'GPR', type: 'u64', count: 16, class: 'arch',
      lead: ['General registers in x86 encoding order, 8 bytes each: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15.'] },
    { name: 'RIP', type: 'u64', class: 'arch' },
    { name: 'RFLAGS', type: 'u64', class: 'arch', doc: 'u64: every flag that is not currently held lazily' },
    { name: 'LAZY_OP', type: 'u32', class: 'arch', doc: 'u32: LF_* below; LF_NONE means RFLAGS holds the arithmetic flags' },
    { name: 'LAZY_SIZE', type: 'u32', class: 'arch', doc: 'u32: operand size in bytes of the lazy operation' },
    { name: 'LAZY_RES', type: 'u64', class: 'arch', doc: 'u64: result' },
    { name: 'LAZY_DST', type: 'u64', class: 'arch', doc: 'u64: first operand (destination before the operation)' },
    { name: 'LAZY_SRC', type: 'u64', class: 'arch', doc: 'u64: second operand' },
    { name: 'LAZY_AUX', type: 'u64', class: 'arch', doc: 'u64: carry-in (ADC/SBB) or the preserved CF (INC/DEC)' },
    { name: 'MODE', type: 'u32', at: 0x0d0, class: 'host', doc: 'u32: MODE_* below' },
    { name: 'TSC_OFFSET', type: 'u64', class: 'arch', doc: 'u64: RDTSC = instructions retired + offset (virtual time)' },
    { name: 'SEG', type: segment, count: 8, at: 0x100, class: 'arch',
      lead: ['Segment registers in x86 encoding order (ES CS SS DS FS GS) then LDTR and TR, SEG_SLOT bytes each',
        '(the segment struct: SEG_BASE, SEG_LIMIT, SEG_SELECTOR, SEG_ATTR); SEG_ES..SEG_TR index them.'] },
    { alias: 'FS_BASE', of: 'SEG', plus: 4 * 16, doc: '= ST_SEG + SEG_FS * SEG_SLOT' },
    { alias: 'GS_BASE', of: 'SEG', plus: 5 * 16, doc: '= ST_SEG + SEG_GS * SEG_SLOT' },
    { name: 'GDTR_BASE', type: 'u64', class: 'arch', doc: 'u64' },
    { name: 'GDTR_LIMIT', type: 'u32', class: 'arch', doc: 'u32' },
    { name: 'IDTR_BASE', type: 'u64', class: 'arch', doc: 'u64' },
    { name: 'IDTR_LIMIT', type: 'u32', class: 'arch', doc: 'u32' },
    { name: 'CR0', type: 'u64', class: 'arch', doc: 'u64' },
    { name: 'CR2', type: 'u64', class: 'arch' },
    { name: 'CR3', type: 'u64', class: 'arch' },
    { name: 'CR4', type: 'u64', class: 'arch' },
    { name: 'CR8', type: 'u64', class: 'arch' },
    { name: 'EFER', type: 'u64', class: 'arch' },
    { name: 'XCR0', type: 'u64', class: 'arch' },
    { name: 'DR0', type: 'u64', count: 4, class: 'arch', doc: 'DR0-DR3: u64 each (0x1d8, 0x1e0, 0x1e8, 0x1f0)' },
    { name: 'DR6', type: 'u32', class: 'arch', doc: 'u32' },
    { name: 'DR7', type: 'u32', class: 'arch', doc: 'u32' },

    { name: 'EXIT_REASON', type: 'u32', class: 'transient', doc: 'u32: EXIT_* below',
      lead: ['', 'Exit record (like the mmap\'ed kvm_run): filled by run() before it returns.'] },
    { name: 'EXIT_VECTOR', type: 'u32', class: 'transient', doc: 'u32: exception vector (EXIT_EXCEPTION)' },
    { name: 'EXIT_ERROR_CODE', type: 'u32', class: 'transient', doc: 'u32' },
    { name: 'EXIT_HAS_ERROR', type: 'u32', class: 'transient', doc: 'u32: 1 when the exception pushes an error code' },
    { name: 'EXIT_ADDR', type: 'u64', class: 'transient', doc: 'u64: faulting linear address (#PF), port (I/O), ...' },
    { name: 'EXIT_OPCODE', type: 'u32', class: 'transient', doc: 'u32: opcode index of an unimplemented instruction (#UD)' },
    { name: 'EXIT_RIP', type: 'u64', class: 'transient', doc: 'u64: address of the instruction that caused the exit' },
    { name: 'EXIT_BYTES', type: 'u8', count: 16, align: 8, class: 'transient', doc: '16 bytes: the instruction bytes (as far as they were fetched)' },
    { name: 'EXIT_LENGTH', type: 'u32', class: 'transient', doc: 'u32: number of valid bytes at ST_EXIT_BYTES' },
    { name: 'FETCH_BUF', type: 'u8', count: 16, align: 16, class: 'transient', doc: '16 bytes: instruction bytes gathered across a page boundary' },
    { name: 'IO_PORT', type: 'u32', class: 'transient', doc: 'u32',
      lead: ['Port I/O exit (EXIT_IO): like kvm_run.io. For IN, the host writes ST_IO_DATA before the next',
        'run(), which completes the instruction by loading it into AL/AX/EAX.'] },
    { name: 'IO_SIZE', type: 'u32', class: 'transient', doc: 'u32: 1, 2 or 4' },
    { name: 'IO_DIR', type: 'u32', class: 'transient', doc: 'u32: IO_OUT or IO_IN' },
    { name: 'IO_DATA', type: 'u32', class: 'transient', doc: 'u32' },
    { name: 'IO_PENDING_IN', type: 'u32', class: 'transient', doc: 'u32: 1 while an IN waits for the host\'s data' },
    { name: 'IRQ_VECTOR', type: 'i32', class: 'arch', doc: 'i32: pending external interrupt vector, or -1',
      lead: ['External interrupts (like KVM_INTERRUPT / KVM_NMI): the host sets the vector; the core delivers it',
        'at the first instruction boundary where RFLAGS.IF = 1 and no STI/MOV SS shadow is in effect.'] },
    { name: 'NMI_PENDING', type: 'u32', class: 'arch', doc: 'u32' },
    { name: 'INTERRUPTED', type: 'u32', class: 'transient', doc: 'u32: interrupts delivered (a counter the host may read)' },

    { name: 'EXIT_GVA', type: 'u64', class: 'transient', doc: 'u64: guest linear address of an EPT violation (when known)',
      lead: ['', 'MMU state of a vCPU (the VMCS fields KVM keeps for EPT and VPID, plus the PAE PDPTE registers).'] },
    { name: 'EPTP', type: 'u64', class: 'host', doc: 'u64: hpa of the EPT PML4 | EPTP_ENABLE; 0 = --mmu direct (gpa = hpa)' },
    { name: 'VPID', type: 'u32', class: 'host', doc: 'u32: guest tag of this vCPU\'s TLB entries (KVM\'s VPID)' },
    { name: 'PDPTE', type: 'u64', count: 4, class: 'arch', doc: '4 x u64: PAE PDPTEs, loaded on MOV CR3 (SDM Vol. 3A, 4.4.1)' },
    { name: 'IRQ_WINDOW', type: 'u32', class: 'host', doc: 'u32: the host asks for EXIT_IRQ_WINDOW as soon as the guest can take an interrupt' },
    { name: 'INTERRUPT_SHADOW', type: 'u32', class: 'arch', doc: 'u32: 1 = an STI or MOV SS shadow covers the next instruction' },
    { name: 'UNIMPLEMENTED_LIN', type: 'u64', class: 'transient', doc: 'u64: linear address of the last instruction hvlab does not implement' },
    { name: 'SHADOW', type: 'u64', class: 'host',
      lead: ['Shadow paging of a vCPU: ST_SHADOW is the hpa of the host\'s gpa -> hpa map (EPT format, walked by',
        'the shadow MMU in software) | SHADOW_ENABLE, 0 = off. ST_SHADOW_ROOT: index + 1 of the shadow page',
        'used as root (0 = none yet); ST_SHADOW_PREV: SHADOW_PREV_ROOTS cached roots (KVM\'s prev_roots),',
        'most recent first, 16 bytes each: u64 reserved, u32 index + 1 (0 = empty), u32 pad.',
        'Root and cached roots are a cache of the shadow MMU (rebuilt on demand): transient.'] },
    { name: 'SHADOW_ROOT', type: 'u32', class: 'transient', doc: 'u32' },
    { name: 'SHADOW_PREV', type: 'u8', count: SHADOW_PREV_ROOTS * 16, align: 8, class: 'transient', doc: 'SHADOW_PREV_ROOTS x 16 bytes' },
    { name: 'VM', type: 'u32', class: 'host', doc: 'u32: index of the vCPU\'s VM (its control block at VM_AREA_BASE + vm * VM_STRIDE)' },
    { name: 'VM_VCPU', type: 'u32', class: 'host', doc: 'u32: the vCPU\'s index within its VM (0 = the bootstrap processor)' },
    { name: 'PLE_GAP', type: 'u32', class: 'host', doc: 'u32: PAUSE-loop exiting: most instructions between two PAUSEs of one loop (VMX PLE_Gap)',
      lead: ['Pause-loop exiting (SDM Vol. 3C, 26.1.3, in instructions of virtual time): a spin loop of PAUSEs at',
        'CPL 0 lasting over PLE_WINDOW exits with EXIT_PAUSE_LOOP; PLE_WINDOW = 0 turns it off.'] },
    { name: 'PLE_WINDOW', type: 'u32', class: 'host', doc: 'u32: most instructions one PAUSE loop may last before it exits (VMX PLE_Window)' },
    { name: 'PLE_LAST', type: 'u64', class: 'transient', doc: 'u64: time of the last PAUSE at CPL 0 (instructions retired)' },
    { name: 'PLE_LOOP_START', type: 'u64', class: 'transient', doc: 'u64: time of the first PAUSE of the current loop' },

    { name: 'COUNTERS', type: 'u64', count: CNT_SLOTS, class: 'transient',
      lead: ['', 'Counters: u64 slots from ST_COUNTERS, index with CNT_* * 8.'] },
    { name: 'UD_BY_OPCODE', type: 'u32', count: OPC_COUNT, at: 0x400, class: 'transient',
      lead: ['#UD by opcode: u32 per opcode index (OPC_* space) at ST_UD_BY_OPCODE.'] },
    { name: 'FXSAVE', type: 'u8', count: FXSAVE_SIZE, align: 16, class: 'arch',
      lead: ['x87 / MMX / SSE state: the FXSAVE image (FX_* offsets, FXSAVE_SIZE bytes), at a 16-byte boundary.'] },
  ],
};

/** One VM control block (KVM's struct kvm, the per-VM part of a VMCS), at VM_AREA_BASE + vm * VM_STRIDE. */
export const vmBlock: Struct = {
  name: 'VM control block', prefix: 'VM_',
  stride: { name: 'VM_STRIDE', value: VM_STRIDE, hex: true },
  fields: [
    { name: 'RAM_SIZE', type: 'u64', class: 'host', doc: 'u64: guest RAM [0, size) in guest-physical space' },
    { name: 'ROM_SIZE', type: 'u64', class: 'host', doc: 'u64: firmware ROM ending at 4 GiB (0 = none)' },
    { name: 'ROM_HPA', type: 'u64', class: 'host', doc: 'u64: hpa of the ROM\'s first byte (contiguous in the pool)' },
    { name: 'DIRECT_HPA', type: 'u64', class: 'host', doc: 'u64: --mmu direct: hpa of gpa 0 (RAM is one contiguous run)' },
    { name: 'HOST_MAP', type: 'u64', class: 'host', doc: 'u64: hpa of the VM\'s gpa -> hpa map (EPT PML4), with VMF_MAPPED' },
    { name: 'VCPU_FIRST', type: 'u32', class: 'host', doc: 'u32: index of the VM\'s first vCPU (its vCPUs are consecutive)' },
    { name: 'VCPU_COUNT', type: 'u32', class: 'host', doc: 'u32' },
    { name: 'FLAGS', type: 'u32', class: 'host', doc: 'u32: VMF_* (see the constants below)' },
    { name: 'SHADOW_CONTEXT', type: 'u8', count: VM_SHADOW_CONTEXT_SIZE, align: 64, class: 'transient',
      doc: 'the shadow MMU\'s state of this VM while another VM runs (wasm/mmu/shadow.ts)' },
  ],
  params: [{ name: 'VM_SHADOW_CONTEXT_SIZE', value: VM_SHADOW_CONTEXT_SIZE, hex: true }],
};

/** The host area: what describes the pool (emitted as addresses). */
export const hostArea: Struct = {
  name: 'host area', prefix: 'HOST_',
  fields: [
    { name: 'POOL_BYTES', type: 'u64', class: 'host', doc: 'u64: size of the frame pool' },
    { name: 'FRAME_TABLE', type: 'u64', class: 'host', doc: 'u64: linear address of the frame table (after the pool)' },
    { name: 'FRAME_COUNT', type: 'u32', class: 'host', doc: 'u32: frames in the pool' },
  ],
};

/** The results of the probe exports (api.ts probeWalk), emitted as addresses. */
export const probe: Struct = {
  name: 'probe results', prefix: 'PROBE_',
  fields: [
    { name: 'GPA', type: 'u64', class: 'transient', doc: 'u64: results of the probe exports (api.ts probeWalk)' },
    { name: 'HPA', type: 'u64', class: 'transient', doc: 'u64' },
    { name: 'ERROR', type: 'u32', class: 'transient', doc: 'u32: #PF error code or EPT exit qualification' },
    { name: 'PAGE_SHIFT', type: 'u32', class: 'transient', doc: 'u32: guest page size (log2)' },
    { name: 'HOST_PAGE_SHIFT', type: 'u32', class: 'transient', doc: 'u32: host page size (log2), 0 under --mmu direct' },
  ],
};

/** One entry of the frame table (after the pool; emu/hv/mm/frame-pool.ts keeps it). */
export const frameEntry: Struct = {
  name: 'frame-table entry', prefix: 'FRAME_',
  stride: { name: 'FRAME_ENTRY_SIZE', value: FRAME_ENTRY_SIZE },
  fields: [
    { name: 'STATE', type: 'u8', class: 'host', doc: 'u8: FRAME_FREE, FRAME_GUEST, ...' },
    { name: 'FLAGS', type: 'u8', class: 'host', doc: 'u8' },
    { name: 'OWNER', type: 'u16', class: 'host', doc: 'u16: VM index + 1, 0 = the host' },
    { name: 'GFN', type: 'u32', class: 'host', doc: 'u32: gfn of the first mapping' },
    { name: 'REFCOUNT', type: 'u32', class: 'host', doc: 'u32: reference count (mappings: dedup shares frames)' },
    { name: 'RMAP_NEXT', type: 'u32', class: 'host',
      doc: 'u32: index + 1 of the next reverse-map node (further (vm, gfn) mappings of a shared frame; 0 = none)' },
  ],
};

// ---- Regions of the host linear memory, in address order ----
export const regions: Region[] = [
  { label: 'open bus', base: 'OPEN_BUS_BASE', size: 64, align: 0x1000, at: 0x1000,
    doc: '64 bytes of 0xFF: what reads of unbacked physical addresses see',
    lead: ['---- Host linear memory map (byte offsets in the one WebAssembly.Memory) ----',
      'One instance is one host (ARCHITECTURE.md, section 1): below HOST_POOL_BASE lie the core\'s own',
      'areas (VM control blocks, vCPU states, TLBs, caches); from HOST_POOL_BASE on, the host frame pool',
      '(the host\'s "physical RAM": guest frames, nested tables, shadow pages); after the pool, the frame',
      'table (FRAME_* below) and the block staging buffer. An hpa is an offset into the pool.'] },
  { label: 'bounce slots', base: 'BOUNCE_BASE', size: BOUNCE_SLOTS * BOUNCE_SLOT_SIZE, align: 0x100,
    doc: 'staging for accesses split across two discontiguous pages',
    params: [{ name: 'BOUNCE_SLOTS', value: BOUNCE_SLOTS, doc: '64 bytes each: 16 data, then u64 phys1, u64 phys2, u32 n1, u32 size' }] },
  { label: 'MMIO staging', base: 'MMIO_STAGE_BASE', size: MMIO_STAGE_SLOTS * MMIO_STAGE_SLOT_SIZE, align: 0x100, at: 0x1300,
    doc: 'MMIO_STAGE_SLOTS x 32 bytes: data of device (MMIO) accesses',
    params: [{ name: 'MMIO_STAGE_SLOTS', value: MMIO_STAGE_SLOTS }] },
  { label: 'MSR data', base: 'MSR_DATA', size: 8, align: 0x100,
    doc: 'u64: the value of an MSR access handed to the host (env.msrRead/msrWrite)' },
  { label: 'zero page', base: 'ZERO_PAGE_BASE', size: 0x1000, align: 0x1000,
    doc: '4 KiB of zeros, never written: what device reads of untouched guest RAM see' },
  { label: 'CPUID count', base: 'CPUID_COUNT_ADDR', size: 4 * MAX_VMS, align: 0x1000, at: 0xc000,
    doc: 'u32 per VM: number of valid entries of its CPUID table' },
  { label: 'CPU model', base: 'CPU_MODEL_ADDR', size: 4 * MAX_VMS, align: 0x40,
    doc: 'u32 per VM: CPUB_* behaviour bits of its CPU model (emu/cpu/models.ts), written with its CPUID table' },
  { label: 'VM control blocks', base: 'VM_AREA_BASE', size: MAX_VMS * VM_STRIDE, align: 0x1000,
    lead: ['', '---- VM control blocks (KVM\'s struct kvm, the per-VM part of a VMCS): one per guest ----',
      'run(vcpu) finds the vCPU\'s VM (ST_VM) and loads what is per VM from its block (wasm/vm.ts).'],
    params: [{ name: 'VM_STRIDE', value: VM_STRIDE, hex: true }, { name: 'MAX_VMS', value: MAX_VMS }],
    struct: vmBlock },
  { label: 'host area', base: 'HOST_AREA_BASE', size: 0x14, align: 0x1000,
    lead: ['', '---- The host area: what describes the pool ----'], struct: hostArea, absolute: true },
  { label: 'static data', base: 'STATIC_DATA_BASE', size: 4 * MiB - STATIC_DATA_BASE, align: 0x10000, at: STATIC_DATA_BASE,
    doc: 'asc memoryBase: decode tables and other static data', lead: [''] },
  { label: 'decoded cache', base: 'DECODED_CACHE_BASE', size: (DECODED_CACHE_ENTRIES + 1) * DECODED_ENTRY_SIZE, align: 4 * MiB,
    doc: 'decoded-instruction cache (see wasm/cpu/code-cache.ts), then one scratch entry',
    params: [{ name: 'DECODED_CACHE_ENTRIES', value: DECODED_CACHE_ENTRIES, doc: 'direct-mapped by the low bits of the linear address, validated by host frame' },
      { name: 'DECODED_ENTRY_SIZE', value: DECODED_ENTRY_SIZE }] },
  { label: 'code-frame map', base: 'CODE_FRAME_MAP_BASE', size: CODE_FRAME_MAP_SIZE, align: 0x10000,
    doc: 'one byte per host frame: CODE_FRAME_DECODED | generation (wasm/cpu/code-cache.ts)',
    params: [{ name: 'CODE_FRAME_MAP_SIZE', value: CODE_FRAME_MAP_SIZE, hex: true }] },
  { label: 'CPUID tables', base: 'CPUID_TABLE_BASE', size: MAX_VMS * CPUID_MAX_ENTRIES * CPUID_ENTRY_SIZE, align: 0x1000,
    doc: 'per VM (KVM_SET_CPUID2 is per vCPU; one model per guest here): its CPUID table, written by the host',
    params: [{ name: 'CPUID_ENTRY_SIZE', value: CPUID_ENTRY_SIZE, doc: 'leaf, subleaf, eax, ebx, ecx, edx (u32 each)' },
      { name: 'CPUID_MAX_ENTRIES', value: CPUID_MAX_ENTRIES },
      { name: 'CPUID_TABLE_STRIDE', value: CPUID_MAX_ENTRIES * CPUID_ENTRY_SIZE, hex: true, doc: 'bytes of one VM\'s table' }] },
  { label: 'MMU trace', base: 'MMU_TRACE_BASE', size: MMU_TRACE_MAX * MMU_TRACE_RECORD, align: 0x10000,
    doc: 'MMU_TRACE_MAX records of 32 bytes (see wasm/mmu/accounting.ts)',
    lead: ['', '---- The MMU\'s host memory (wasm/mmu): walk trace, counters, data-cache model, TLBs ----'],
    params: [{ name: 'MMU_TRACE_MAX', value: MMU_TRACE_MAX }] },
  { label: 'MMU trace count', base: 'MMU_TRACE_COUNT', size: 4, align: 0x100, doc: 'u32: records written since tracing was armed' },
  { label: 'probe results', size: 0x1c, align: 0x100, struct: probe, absolute: true },
  { label: 'MMU counters', base: 'MMU_COUNTERS_BASE', size: MAX_VCPUS * MMU_COUNTER_SLOTS * 8, align: 0x1000,
    doc: 'per vCPU: MMU_COUNTER_SLOTS u64 counters (MC_* below)',
    params: [{ name: 'MMU_COUNTER_SLOTS', value: MMU_COUNTER_SLOTS }] },
  { label: 'cache model', base: 'CACHE_MODEL_BASE', size: CACHE_MODEL_MAX_LINES * CACHE_LINE_STATE, align: 0x10000,
    doc: 'data-cache model: one u32 tag + u32 LRU stamp per line',
    params: [{ name: 'CACHE_MODEL_MAX_LINES', value: CACHE_MODEL_MAX_LINES, hex: true, doc: '8 MiB of 64-byte lines' }] },
  { label: 'TLB areas', base: 'TLB_BASE', size: MAX_VCPUS * TLB_AREA_SIZE, align: 0x10000,
    doc: 'per vCPU TLB_AREA_SIZE bytes: the arrays of wasm/mmu/tlb.ts',
    params: [{ name: 'TLB_AREA_SIZE', value: TLB_AREA_SIZE, hex: true }, { name: 'TLB_ENTRY_SIZE', value: TLB_ENTRY_SIZE },
      { name: 'TLB_MAX_ENTRIES', value: TLB_AREA_SIZE / TLB_ENTRY_SIZE, hex: true, doc: 'TLB_AREA_SIZE / TLB_ENTRY_SIZE' }] },
  { label: 'block segment list', base: 'BLK_SEG_LIST_BASE', size: BLK_MAX_CHAIN * BLK_SEG_SIZE, align: 0x10000,
    lead: ['', '---- The block I/O data path (wasm/blk) ----',
      'walkChain writes the buffers of one descriptor chain here, in chain order, each checked to lie in',
      'guest RAM: { u64 gpa, u32 len, u32 flags (BLK_SEG_WRITABLE) } (virtio 1.2, 2.7.5).'],
    params: [{ name: 'BLK_SEG_SIZE', value: BLK_SEG_SIZE },
      { name: 'BLK_MAX_CHAIN', value: BLK_MAX_CHAIN, lead: ['/** Descriptors one chain may have (QEMU\'s VIRTQUEUE_MAX_SIZE): a longer chain is a fault. */'] }] },
  { label: 'block walk result', base: 'BLK_WALK_RESULT', size: 16, align: 0x100,
    lead: ['/** Outcome of the last walk: i32 fault (BLK_FAULT_*), i32 index of the status segment or -1,',
      ' *  i32 readable count (the first segments), i32 writable count (the rest). */'] },
  { label: 'block descriptor scratch', base: 'BLK_DESC_SCRATCH', size: 16, align: 0x100,
    lead: ['/** 16 bytes: the descriptor being read (copied out of guest memory, which may split it across pages). */'] },
  { label: 'vCPU states', base: 'VCPU_AREA_BASE', size: MAX_VCPUS * VCPU_STRIDE, align: 0x10000,
    lead: ['', '---- vCPU states: after the TLB areas of MAX_VCPUS vCPUs ----'],
    params: [{ name: 'MAX_VCPUS', value: MAX_VCPUS }, { name: 'VCPU_STRIDE', value: VCPU_STRIDE, hex: true }] },
];

export interface Schema {
  hostPoolBase: number;
  regions: Region[];
  /** Structs emitted after the memory map, each in its own section (segment before the vCPU state). */
  structs: Array<{ struct: Struct; lead: string[] }>;
}

export const schema: Schema = {
  hostPoolBase: HOST_POOL_BASE,
  regions,
  structs: [
    { struct: frameEntry, lead: ['---- The frame table: one entry per host frame of the pool (emu/hv/mm/frame-pool.ts keeps it) ----',
      'u8 state (FRAME_*), u8 flags, u16 owner (VM index + 1, 0 = the host), u32 gfn of the first',
      'mapping, u32 reference count (mappings: dedup shares frames), u32 index + 1 of the next reverse-map',
      'node (further (vm, gfn) mappings of a shared frame; 0 = none).'] },
    { struct: segment, lead: ['---- Segment register slot of the vCPU state (ST_SEG), 16 bytes:',
      'u64 base, u32 limit (byte granular, expanded), u16 selector, u16 attributes (SEG_ATTR_* below).'] },
    { struct: vcpuState, lead: ['---- vCPU state: byte offsets from the vCPU\'s base (VCPU_AREA_BASE + vcpu * VCPU_STRIDE) ----'] },
  ],
};
