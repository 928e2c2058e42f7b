// QEMU's isa-debug-exit (hw/misc/debugexit.c): a write of `value` ends the machine with exit status
// (value << 1) | 1, so test kernels report pass/fail through the emulator's exit code.
import type { PortDevice } from './port-bus.ts';

export class DebugExit implements PortDevice {
  readonly name = 'isa-debug-exit';
  /** The exit status requested by the guest, once it wrote to the port. */
  status: number | null = null;
  constructor(readonly port = 0xf4) {}
  read(): number { return 0xffffffff; }
  write(_port: number, _size: number, value: number): void { this.status = ((value << 1) | 1) >>> 0; }
}
