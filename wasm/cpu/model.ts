// The running VM's CPU model: the CPUB_* behaviour bits the host wrote with its CPUID table
// (emu/cpu/models.ts, emu/cpu/cpuid.ts writeCpuidTable). Read only on the paths where the vendors
// differ, none of which is hot.
import { CPU_MODEL_ADDR } from '../abi';
import { currentVm } from '../mem/memory-map';

/** Whether the running VM's model has behaviour bit `bit` (CPUB_*). */
@inline export function modelHas(bit: u32): bool {
  return (load<u32>(<usize>CPU_MODEL_ADDR + (<usize>currentVm << 2)) & bit) != 0;
}
