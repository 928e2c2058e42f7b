// The workload where shadow paging loses (`hvlab bench pagewalk --churn`): a 64-bit guest kernel
// that creates and tears down address spaces, as fork/exec and exit do. Each iteration builds a
// 4-level address space (PML4, PDPT, PD, PT) in one of four reused sets of frames, shares the kernel
// half with the base address space, maps `pages` user pages, loads CR3, writes every page, goes back
// to the base CR3 and clears the tables again. Under shadow paging every step is an exit (CR3 loads,
// page faults building sptes, writes to shadowed tables until write-flooding unshadows them); under
// EPT none is, and the cost moves to two-dimensional walks.
import * as abi from '../../wasm/abi.ts';
import { Host, type MmuMode, type Vcpu } from '../machine/host.ts';
import { GuestPageTables, PTE_RW } from './guest-page-tables.ts';
import { runToHlt } from './pagewalk-lab.ts';
import type { PageSize } from '../hv/mm/nested-page-table.ts';

const CODE_GPA = 0x1000;
const BASE_TABLES_GPA = 0x200000; // the base address space's tables: [2 MiB, 4 MiB)
const SPACES_GPA = 0x1000000; // four address spaces of four table pages each
const DATA_GPA = 0x2000000; // the user pages every address space maps
const RAM = 0x4000000; // 64 MiB, identity-mapped by the base address space (2 MiB pages)
export const CHURN_MAX_PAGES = 512;

// nasm listing (bits 64): rdi = address-space pool, rsi = base PML4, rdx = data pages, rcx =
// iterations, r9 = pages per address space.
const CHURN_LOOP = [
  0x48, 0x89, 0xc8, //                  .iter: mov rax, rcx
  0x83, 0xe0, 0x03, //                         and eax, 3
  0x48, 0xc1, 0xe0, 0x0e, //                   shl rax, 14
  0x4c, 0x8d, 0x14, 0x07, //                   lea r10, [rdi + rax]     ; P = PML4, Q = P+1000h, R = +2000h, S = +3000h
  0x48, 0x8b, 0x06, //                         mov rax, [rsi]
  0x49, 0x89, 0x02, //                         mov [r10], rax           ; the kernel half
  0x49, 0x8d, 0x82, 0x07, 0x10, 0x00, 0x00, // lea rax, [r10 + 1007h]
  0x49, 0x89, 0x42, 0x08, //                   mov [r10 + 8], rax       ; P[1] -> Q
  0x49, 0x8d, 0x82, 0x07, 0x20, 0x00, 0x00, // lea rax, [r10 + 2007h]
  0x49, 0x89, 0x82, 0x00, 0x10, 0x00, 0x00, // mov [r10 + 1000h], rax   ; Q[0] -> R
  0x49, 0x8d, 0x82, 0x07, 0x30, 0x00, 0x00, // lea rax, [r10 + 3007h]
  0x49, 0x89, 0x82, 0x00, 0x20, 0x00, 0x00, // mov [r10 + 2000h], rax   ; R[0] -> S
  0x4d, 0x31, 0xdb, //                         xor r11, r11
  0x4c, 0x89, 0xd8, //                   .map: mov rax, r11
  0x48, 0xc1, 0xe0, 0x0c, //                   shl rax, 12
  0x48, 0x01, 0xd0, //                         add rax, rdx
  0x48, 0x83, 0xc8, 0x07, //                   or rax, 7
  0x4b, 0x89, 0x84, 0xda, 0x00, 0x30, 0x00, 0x00, // mov [r10 + r11*8 + 3000h], rax ; S[j] -> page j
  0x49, 0xff, 0xc3, //                         inc r11
  0x4d, 0x39, 0xcb, //                         cmp r11, r9
  0x72, 0xe2, //                               jb .map
  0x41, 0x0f, 0x22, 0xda, //                   mov cr3, r10             ; exec
  0x49, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, // mov r8, 8000000000h
  0x4d, 0x31, 0xdb, //                         xor r11, r11
  0x49, 0x89, 0x08, //                 .touch: mov [r8], rcx
  0x49, 0x81, 0xc0, 0x00, 0x10, 0x00, 0x00, // add r8, 1000h
  0x49, 0xff, 0xc3, //                         inc r11
  0x4d, 0x39, 0xcb, //                         cmp r11, r9
  0x72, 0xee, //                               jb .touch
  0x0f, 0x22, 0xde, //                         mov cr3, rsi             ; exit
  0x4d, 0x31, 0xdb, //                         xor r11, r11
  0x4b, 0xc7, 0x84, 0xda, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // .unmap: mov qword [r10 + r11*8 + 3000h], 0
  0x49, 0xff, 0xc3, //                         inc r11
  0x4d, 0x39, 0xcb, //                         cmp r11, r9
  0x72, 0xec, //                               jb .unmap
  0x31, 0xc0, //                               xor eax, eax
  0x49, 0x89, 0x82, 0x00, 0x20, 0x00, 0x00, // mov [r10 + 2000h], rax
  0x49, 0x89, 0x82, 0x00, 0x10, 0x00, 0x00, // mov [r10 + 1000h], rax
  0x49, 0x89, 0x42, 0x08, //                   mov [r10 + 8], rax
  0x49, 0x89, 0x02, //                         mov [r10], rax
  0x48, 0xff, 0xc9, //                         dec rcx
  0x0f, 0x85, 0x47, 0xff, 0xff, 0xff, //       jnz .iter
  0xf4, //                                     hlt
];

export interface ChurnOptions { mmu: MmuMode; hostPage?: PageSize }

export class ChurnLab {
  readonly host: Host;
  readonly vcpu: Vcpu;
  private readonly base: GuestPageTables;

  constructor(readonly opts: ChurnOptions) {
    this.host = new Host({ ramBytes: RAM, mmu: opts.mmu, hostPageSize: opts.hostPage ?? '2m' });
    const v = this.vcpu = this.host.vcpu(0);
    v.resetArchitectural();
    this.base = new GuestPageTables(this.host, BASE_TABLES_GPA, BASE_TABLES_GPA + 0x200000);
    this.base.map(0n, 0, RAM, '2m', PTE_RW); // the kernel's identity map
    this.host.writeGuest(CODE_GPA, CHURN_LOOP);
    v.cr0 = 0x80010011n; // PG, WP, ET, PE
    v.setReg64(abi.ST_CR4, 0x20n);
    v.setReg64(abi.ST_EFER, 0x500n);
    v.setReg64(abi.ST_CR3, BigInt(this.base.root));
    v.setSegment(abi.SEG_CS, { base: 0n, limit: 0xffffffff, selector: 0x08, attr: 0xa09b });
    v.setSegment(abi.SEG_SS, { base: 0n, limit: 0xffffffff, selector: 0x10, attr: 0xc093 });
  }

  /** Run `iterations` address-space lifetimes of `pages` pages each; returns the instructions run. */
  run(iterations: number, pages: number): number {
    if (!(pages >= 1 && pages <= CHURN_MAX_PAGES) || !(iterations >= 1)) throw new Error(`hvlab: churn needs 1-${CHURN_MAX_PAGES} pages and at least one iteration`);
    const v = this.vcpu;
    v.rip = BigInt(CODE_GPA);
    v.setReg(7, BigInt(SPACES_GPA));
    v.setReg(6, BigInt(this.base.root));
    v.setReg(2, BigInt(DATA_GPA));
    v.setReg(1, BigInt(iterations));
    v.setReg(9, BigInt(pages));
    return runToHlt(v, 'the churn guest');
  }

  /** What the guest left in memory: the first word of each user page and whether every table page
   *  of the four address spaces is clear again (the same in every MMU mode, or something is wrong). */
  result(pages: number): { words: bigint[]; tablesClear: boolean } {
    const mem = this.host.vm0.memory;
    const words: bigint[] = [];
    for (let j = 0; j < pages; j++) words.push(mem.readU64(DATA_GPA + j * 0x1000));
    let clear = true;
    for (let off = 0; off < 0x10000 && clear; off += 8) if (mem.readU64(SPACES_GPA + off) !== 0n) clear = false;
    return { words, tablesClear: clear };
  }
}
