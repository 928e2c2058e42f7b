// VMs: one host runs many, and run(vcpu) finds the vCPU's (ST_VM). What is per VM — its memory map
// (mem/memory-map.ts) and its shadow MMU — is taken from the VM's control block when the running VM
// changes, as a CPU loads a VMCS; the vCPU state itself is always per vCPU in linear memory.
import { ST_VM, MAX_VMS, VM_SHADOW_CONTEXT } from './abi';
import { loadMemoryMap, currentVm, vmBlockOf } from './mem/memory-map';
import { shadowSaveContext, shadowLoadContext } from './mmu/shadow';
import { cpu } from './cpu/state';

/** Make `vm` the running VM (a no-op when it already is). */
export function selectVm(vm: i32): void {
  if (vm == currentVm) return;
  if (currentVm >= 0) shadowSaveContext(vmBlockOf(currentVm) + VM_SHADOW_CONTEXT);
  loadMemoryMap(vm);
  shadowLoadContext(vmBlockOf(vm) + VM_SHADOW_CONTEXT);
}

/** The running vCPU's VM (setCpu first). */
export function vmOfCpu(): i32 {
  const vm = <i32>load<u32>(cpu + ST_VM);
  return vm < MAX_VMS ? vm : 0;
}

/** Select the running vCPU's VM (entry points that act on a vCPU). */
export function selectVmOfCpu(): void { selectVm(vmOfCpu()); }

/** The VM's control block changed (the host configured it): reload it if it is the running one. */
export function reloadVm(vm: i32): void {
  if (vm != currentVm) return;
  shadowSaveContext(vmBlockOf(vm) + VM_SHADOW_CONTEXT);
  loadMemoryMap(vm);
  shadowLoadContext(vmBlockOf(vm) + VM_SHADOW_CONTEXT);
}
