// The APIC message bus: the system bus over which local APICs send IPIs to each other and the IOAPIC
// sends interrupt messages to local APICs (Intel SDM Vol. 3A, 11.6 "Issuing Interprocessor Interrupts"
// and 11.6.2 "Determining IPI Destination"; 82093AA IOAPIC datasheet, 3.2.4). The bus selects the
// destination APICs of a message (physical or logical addressing, flat or cluster model, the
// shorthands, lowest-priority arbitration) and carries EOI broadcasts from local APICs back to the
// IOAPICs, which clear the Remote IRR of level-triggered entries (SDM 11.8.5).

/** ICR/LVT/redirection-entry delivery modes (SDM 11.5.1, 11.6.1; 82093AA 3.2.4). */
export const enum DeliveryMode {
  Fixed = 0,
  LowestPriority = 1,
  Smi = 2,
  Reserved = 3,
  Nmi = 4,
  Init = 5,
  StartUp = 6,
  ExtInt = 7,
}

/** ICR destination shorthand, bits 19:18 (SDM 11.6.1). */
export const enum Shorthand {
  None = 0,
  Self = 1,
  AllIncludingSelf = 2,
  AllExcludingSelf = 3,
}

export interface ApicMessage {
  vector: number;
  deliveryMode: DeliveryMode;
  /** Destination mode: false = physical (APIC ID), true = logical (LDR match). */
  logical: boolean;
  /** 8-bit xAPIC/IOAPIC destination, or 32-bit when `wide` (sent from an APIC in x2APIC mode). */
  destination: number;
  /** True when `destination` is an x2APIC 32-bit destination (broadcast 0xFFFFFFFF, not 0xFF). */
  wide: boolean;
  shorthand: Shorthand;
  levelTriggered: boolean;
  /** ICR level bit: false only for the INIT level de-assert message, which receivers ignore. */
  assert: boolean;
}

/** What the bus needs to know about a receiving local APIC to address it. */
export interface ApicEndpoint {
  /** IA32_APIC_BASE.EN: a hardware-disabled APIC takes no part in bus traffic (SDM 11.4.3). */
  readonly hardwareEnabled: boolean;
  readonly x2apicMode: boolean;
  /** The APIC ID currently in force: APIC ID register bits 31:24 in xAPIC mode, the x2APIC ID otherwise. */
  readonly apicId: number;
  /** The raw Logical Destination Register. */
  readonly logicalDestination: number;
  /** DFR model = 0000b (cluster) rather than 1111b (flat); meaningless in x2APIC mode. */
  readonly clusterModel: boolean;
  /** Arbitration priority (APR) used to pick the target of a lowest-priority message (SDM 11.6.2.4). */
  arbitrationPriority(): number;
  accept(message: ApicMessage): void;
}

/** An IOAPIC, notified when a local APIC EOIs a level-triggered vector (SDM 11.8.5). */
export interface EoiListener {
  onEoiBroadcast(vector: number): void;
}

const XAPIC_BROADCAST = 0xff;
const X2APIC_BROADCAST = 0xffffffff;

export class ApicBus {
  /** Attached local APICs, in attach order (the tie-break of lowest-priority arbitration). */
  private readonly endpoints: ApicEndpoint[] = [];
  private readonly eoiListeners: EoiListener[] = [];

  attach(endpoint: ApicEndpoint): void { this.endpoints.push(endpoint); }
  addEoiListener(listener: EoiListener): void { this.eoiListeners.push(listener); }

  /** Deliver `message` from `source` (null for the IOAPIC); returns how many APICs accepted it. */
  deliver(message: ApicMessage, source: ApicEndpoint | null = null): number {
    const targets = this.destinations(message, source);
    if (message.deliveryMode === DeliveryMode.LowestPriority && targets.length > 1) {
      const chosen = targets.reduce((best, t) => (t.arbitrationPriority() < best.arbitrationPriority() ? t : best));
      chosen.accept(message);
      return 1;
    }
    for (const t of targets) t.accept(message);
    return targets.length;
  }

  broadcastEoi(vector: number): void {
    for (const l of this.eoiListeners) l.onEoiBroadcast(vector);
  }

  /** The APICs a message addresses (SDM 11.6.2). */
  destinations(message: ApicMessage, source: ApicEndpoint | null): ApicEndpoint[] {
    const present = this.endpoints.filter((e) => e.hardwareEnabled);
    switch (message.shorthand) {
      case Shorthand.Self: return source && source.hardwareEnabled ? [source] : [];
      case Shorthand.AllIncludingSelf: return present;
      case Shorthand.AllExcludingSelf: return present.filter((e) => e !== source);
      default: return present.filter((e) => matchesDestination(e, message));
    }
  }
}

/** Physical and logical destination matching, as in KVM's kvm_apic_match_dest (SDM 11.6.2.1-2, 11.12.9). */
export function matchesDestination(e: ApicEndpoint, m: ApicMessage): boolean {
  const dest = m.destination >>> 0;
  if (dest === (m.wide ? X2APIC_BROADCAST : XAPIC_BROADCAST)) return true;
  if (!m.logical) return e.x2apicMode ? dest === e.apicId >>> 0 : (dest & 0xff) === (e.apicId & 0xff);
  if (e.x2apicMode) {
    // x2APIC logical: cluster ID in bits 31:16, one-hot member bitmap in bits 15:0 (SDM 11.12.10.2).
    const ldr = e.logicalDestination >>> 0;
    return (ldr >>> 16) === (dest >>> 16) && (ldr & dest & 0xffff) !== 0;
  }
  const logicalId = (e.logicalDestination >>> 24) & 0xff;
  const mda = dest & 0xff;
  if (!e.clusterModel) return (logicalId & mda) !== 0; // flat: bitmap of up to 8 APICs
  // cluster: cluster number in bits 7:4 must match, member bitmap in bits 3:0.
  return (logicalId >>> 4) === (mda >>> 4) && (logicalId & mda & 0x0f) !== 0;
}
