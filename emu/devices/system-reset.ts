// The chipset's Reset Control Register at I/O port CF9h (Intel PIIX4 datasheet 4.1.17 "RC - Reset
// Control Register"; Intel ICH9 datasheet 13.7.5 "RST_CNT"). Bit 1 (SYS_RST) selects a hard reset
// (the whole platform) over a soft one (INIT of the CPU), bit 3 (FULL_RST) asks for a full power
// cycle on top of a hard reset, and writing bit 2 (RST_CPU) as 1 starts the selected reset. Bits 1
// and 3 read back; bit 2 always reads 0.
//
// CF9h is a byte inside the PCI configuration mechanism's CONFIG_ADDRESS dword (CF8h-CFBh): only a
// byte access reaches this register. The port bus routes an access by its first port, so the PCI
// host bridge (which claims CF8h and CFCh-CFFh only) and this register sit side by side.
import type { PortBus, PortDevice } from './port-bus.ts';

export const RESET_CONTROL_PORT = 0xcf9;

const SYS_RST = 0x02, RST_CPU = 0x04, FULL_RST = 0x08;

/** soft: INIT the CPU; hard: reset the platform; full: hard reset with a power cycle. */
export type ResetKind = 'soft' | 'hard' | 'full';

export class SystemReset implements PortDevice {
  readonly name = 'reset-control';
  private value = 0;

  constructor(private readonly onReset: (kind: ResetKind) => void) {}

  register(bus: PortBus): void { bus.register(RESET_CONTROL_PORT, 1, this); }

  read(): number { return this.value; }

  write(_port: number, _size: number, value: number): void {
    this.value = value & (SYS_RST | FULL_RST);
    if (!(value & RST_CPU)) return;
    const kind: ResetKind = !(value & SYS_RST) ? 'soft' : value & FULL_RST ? 'full' : 'hard';
    this.onReset(kind);
  }
}
