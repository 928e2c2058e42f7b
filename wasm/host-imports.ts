// Calls from the core to the host (WebAssembly imports), for what only the VMM can answer at once:
// device registers behind guest-physical addresses that are not RAM (MMIO: the local APIC, the
// IOAPIC, PCI BARs) and MSRs that belong to host devices (the APIC's). They are synchronous, like a
// KVM in-kernel device would be: an exit and instruction restart would cost more for no gain here
// (notes/assemblyscript-probe.md: a WASM->JS call costs 5-8 ns).

/** Read `size` bytes of device memory at gpa (lo, hi) into linear memory at `dst`. */
@external("env", "mmioRead")
export declare function hostMmioRead(vcpu: i32, gpaLo: i32, gpaHi: i32, size: i32, dst: i32): void;

/** Write `size` bytes from linear memory at `src` to device memory at gpa (lo, hi). */
@external("env", "mmioWrite")
export declare function hostMmioWrite(vcpu: i32, gpaLo: i32, gpaHi: i32, size: i32, src: i32): void;

/** RDMSR of a host-owned MSR: 1 with the value stored at MSR_DATA, 0 for #GP, -1 if the host has
 *  no device behind it (the core's own MSR table answers). */
@external("env", "msrRead")
export declare function hostMsrRead(vcpu: i32, index: i32): i32;

/** WRMSR of a host-owned MSR with the value at MSR_DATA: 1 done, 0 for #GP, -1 not the host's. */
@external("env", "msrWrite")
export declare function hostMsrWrite(vcpu: i32, index: i32): i32;

/** A device (or the core for one) needs guest RAM at gfn (lo, hi) of VM `vm` that has no frame
 *  (demand paging, or the host reclaimed it): the host maps one, as a first touch would (KVM's
 *  gfn_to_pfn faulting the page in, from swap if it is there). 1 done; 2 (a read only) the page
 *  holds zeros and has no frame (the caller reads the zero page); 0 when the host cannot (out of
 *  memory, or not RAM). */
@external("env", "guestFrameFault")
export declare function hostGuestFrameFault(vm: i32, gfnLo: i32, gfnHi: i32, write: i32): i32;
