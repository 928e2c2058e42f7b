; External interrupts (SDM Vol. 3A, 6.8): the host injects a vector while the guest is halted.
; Checks: with IF = 0 an injected interrupt waits; STI's shadow lets the next instruction run first;
; HLT with IF = 1 resumes after the handler returns. The host side of the protocol is in
; test/guests.test.ts: at each HLT it injects the next vector (0x40, then 0x41).
bits 32
org 0x100000
%include "multiboot.inc"

start:
  mov esp, stack_top
  lgdt [gdtr]               ; multiboot leaves GDTR undefined: the gates need CS in a GDT
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov edi, 0x40
  mov ebx, handle_40
  call set_gate
  mov edi, 0x41
  mov ebx, handle_41
  call set_gate
  lidt [idtr]

  cli
  hlt                       ; the host injects 0x40 here; IF = 0 keeps it pending
  cmp dword [count40], 0
  jne fail
  mov esi, ok1
  call print
  mov dword [marker], 0
  sti                       ; the shadow covers the next instruction
  mov dword [marker], 1     ; ... so this runs before the pending interrupt
  nop
  cmp dword [count40], 1
  jne fail
  cmp dword [seen_marker], 1
  jne fail
  mov esi, ok2
  call print
  hlt                       ; IF = 1: the host injects 0x41, the handler returns after HLT
  cmp dword [count41], 1
  jne fail
  mov esi, ok3
  call print
  mov al, 0x10
  jmp exit

handle_40:
  push eax
  mov eax, [marker]
  mov [seen_marker], eax
  inc dword [count40]
  pop eax
  iretd
handle_41:
  inc dword [count41]
  iretd

fail:
  mov esi, failmsg
  call print
  mov al, 1
  jmp exit

DEFINE_SET_GATE

ok1: db "ok 1 an interrupt injected while IF = 0 waits", 10, 0
ok2: db "ok 2 STI shadow: the next instruction ran before the interrupt", 10, 0
ok3: db "ok 3 HLT with IF = 1 resumed after the handler", 10, 0
failmsg: db "FAIL", 10, 0
align 4
count40: dd 0
count41: dd 0
marker: dd 0
seen_marker: dd 0
idtr:
  dw 256 * 8 - 1
  dd idt
align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF     ; 0x08 code
  dq 0x00CF92000000FFFF     ; 0x10 data
gdtr:
  dw 3 * 8 - 1
  dd gdt
end_load:
align 8
idt: resb 256 * 8
  resb 4096
stack_top:
end_bss:
