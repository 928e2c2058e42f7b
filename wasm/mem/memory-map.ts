// The running VM's guest-physical memory map (KVM's memslots, reduced to what a PC guest has): RAM
// [0, ramSize), firmware ROM ending at 4 GiB, and how RAM reaches the host frame pool — one
// contiguous run at directHpa under --mmu direct, or the VM's gpa -> hpa map (an EPT-format table
// the host edits, walked by the 2D walk under --mmu ept and in software otherwise). wasm/vm.ts loads
// these from the VM's control block when run() switches VMs; every module that turns a gpa into a
// host address reads them here, so no module keeps a private copy of the guest's size or place.
import {
  VM_RAM_SIZE, VM_ROM_SIZE, VM_ROM_HPA, VM_DIRECT_HPA, VM_HOST_MAP, VM_VCPU_FIRST, VM_VCPU_COUNT, VM_FLAGS,
  VMF_DEMAND, VMF_MAPPED, HOST_POOL_BASE, HOST_POOL_BYTES, VM_AREA_BASE, VM_STRIDE,
} from '../abi';

/** Guest RAM size in bytes: gpas at or above it are ROM, device memory or nothing. */
export let ramSize: u64 = 0;
/** Firmware ROM: `romSize` bytes ending at 4 GiB, held contiguously in the pool from `romHpa`. */
export let romSize: u64 = 0;
export let romHpa: u64 = 0;
/** --mmu direct: hpa of gpa 0, and the host address of it (guest RAM is one run of the pool). */
export let directHpa: u64 = 0;
export let directPtr: usize = HOST_POOL_BASE;
/** hpa of the VM's gpa -> hpa map (when mappedMemory). */
export let hostMapRoot: u64 = 0;
/** The VM's RAM goes through its host map (--mmu ept or shadow). */
export let mappedMemory: bool = false;
/** Guest RAM is allocated on first touch: device DMA asks the host to map a frame (env.guestFrameFault). */
export let demandPaging: bool = false;
/** The VM's vCPUs: [vcpuFirst, vcpuFirst + vcpuCount) (the TLB and shadow-root loops cover these only). */
export let vcpuFirst: i32 = 0;
export let vcpuCount: i32 = 0;

/** Size of the host frame pool: no mapping may point outside it (a host bug must not leak memory). */
@inline export function hostPoolSize(): u64 { return load<u64>(HOST_POOL_BYTES); }

/** The VM whose map is loaded (-1: none yet), and its control block. */
export let currentVm: i32 = -1;
export let vmBlock: usize = VM_AREA_BASE;
@inline export function vmBlockOf(vm: i32): usize { return <usize>VM_AREA_BASE + <usize>vm * <usize>VM_STRIDE; }

/** Load the map of VM `vm` from its control block. */
export function loadMemoryMap(vm: i32): void {
  const block = vmBlockOf(vm);
  currentVm = vm;
  vmBlock = block;
  ramSize = load<u64>(block + VM_RAM_SIZE);
  romSize = load<u64>(block + VM_ROM_SIZE);
  romHpa = load<u64>(block + VM_ROM_HPA);
  directHpa = load<u64>(block + VM_DIRECT_HPA);
  directPtr = <usize>HOST_POOL_BASE + <usize>directHpa;
  hostMapRoot = load<u64>(block + VM_HOST_MAP);
  mappedMemory = (load<u32>(block + VM_FLAGS) & VMF_MAPPED) != 0;
  demandPaging = (load<u32>(block + VM_FLAGS) & VMF_DEMAND) != 0;
  vcpuFirst = <i32>load<u32>(block + VM_VCPU_FIRST);
  vcpuCount = <i32>load<u32>(block + VM_VCPU_COUNT);
}
