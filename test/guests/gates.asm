; Call gates (SDM Vol. 3A, 5.8.3-5.8.6): from ring 3, CALL FAR through a DPL-3 32-bit call gate to
; ring-0 code: stack switch to the TSS ring-0 stack with the old SS:ESP and two copied parameters;
; RETF 8 back to ring 3 releases the parameters on both stacks. Also a same-level JMP FAR through a
; gate at ring 0. Exit AL = 0x10 (status 33) when all pass, AL = check number otherwise.
bits 32
org 0x100000
%include "multiboot.inc"

CODE0 equ 0x08
DATA0 equ 0x10
CODE3 equ 0x18 | 3
DATA3 equ 0x20 | 3
TSSSEL equ 0x28
GATE3 equ 0x30 | 3                   ; call gate, DPL 3 -> CODE0:gate_target, 2 parameters
GATE0 equ 0x38                       ; call gate, DPL 0 -> CODE0:jmp_target

start:
  mov esp, stack0_top
  lgdt [gdtr]
  jmp CODE0:.reload
.reload:
  mov ax, DATA0
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov eax, tss
  mov [gdt_tss + 2], ax
  shr eax, 16
  mov [gdt_tss + 4], al
  mov [gdt_tss + 7], ah
  mov dword [tss + 4], stack0_top
  mov word [tss + 8], DATA0
  mov ax, TSSSEL
  ltr ax
  mov eax, gate_target               ; patch the gates' offsets
  mov [gdt_gate3], ax
  shr eax, 16
  mov [gdt_gate3 + 6], ax
  mov eax, jmp_target
  mov [gdt_gate0], ax
  shr eax, 16
  mov [gdt_gate0 + 6], ax
  mov edi, 0x80
  mov ebx, handle_exit
  call set_gate
  mov byte [idt + 0x80 * 8 + 5], 0xEE
  lidt [idtr]

  ; 1: JMP FAR through a DPL-0 gate at ring 0 (no stack change)
  mov byte [check], 1
  mov [saved_esp], esp
  jmp GATE0:0
jmp_back:
  mov esi, ok1
  call print

  ; 2-3: to ring 3, then CALL FAR through the DPL-3 gate with two parameters
  mov byte [check], 2
  push DATA3
  push stack3_top
  pushfd
  push CODE3
  push user_code
  iretd

user_code:
  push dword 0x1111                  ; parameter 1 (pushed first: the deeper one)
  push dword 0x2222                  ; parameter 0
  call GATE3:0
after_call:
  cmp esp, stack3_top                ; RETF 8 released both parameters
  jne .bad
  cmp eax, 0x600d                    ; set by the ring-0 code
  jne .bad
  mov eax, 3
  int 0x80                           ; report success (EAX = 3) from ring 0
.bad:
  mov eax, 2
  int 0x80

jmp_target:
  mov ax, cs
  cmp ax, CODE0
  jne fail
  cmp esp, [saved_esp]
  jne fail
  jmp jmp_back

gate_target:
  ; ring 0 on the TSS stack: EIP, CS, param0, param1, old ESP, old SS
  mov ax, cs
  cmp ax, CODE0
  jne .fail0
  mov ax, ss
  cmp ax, DATA0
  jne .fail0
  cmp esp, stack0_top - 24
  jne .fail0
  cmp dword [esp], after_call
  jne .fail0
  cmp dword [esp + 4], CODE3
  jne .fail0
  cmp dword [esp + 8], 0x2222
  jne .fail0
  cmp dword [esp + 12], 0x1111
  jne .fail0
  cmp dword [esp + 16], stack3_top - 8
  jne .fail0
  cmp dword [esp + 20], DATA3
  jne .fail0
  mov eax, 0x600d
  retf 8
.fail0:
  mov byte [check], 2
  jmp fail

handle_exit:
  mov cx, DATA0
  mov ds, cx
  cmp eax, 3
  jne .no
  mov esi, ok2
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit
.no:
  mov byte [check], 3
  jmp fail

fail:
  mov esi, failmsg
  call print
  mov al, [check]
  jmp exit

DEFINE_SET_GATE

ok1: db "ok 1 JMP FAR through a call gate at ring 0", 10, 0
ok2: db "ok 2 CALL FAR from ring 3 through a gate: new stack, 2 parameters, RETF 8 back", 10, 0
allok: db "all call-gate checks passed", 10, 0
failmsg: db "FAIL", 10, 0

align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF              ; 0x08 code, DPL 0
  dq 0x00CF92000000FFFF              ; 0x10 data, DPL 0
  dq 0x00CFFA000000FFFF              ; 0x18 code, DPL 3
  dq 0x00CFF2000000FFFF              ; 0x20 data, DPL 3
gdt_tss:
  dq 0x0000890000000067              ; 0x28 TSS
gdt_gate3:                           ; 0x30: 32-bit call gate, DPL 3, 2 params, selector CODE0
  dw 0, CODE0
  db 2, 0xEC
  dw 0
gdt_gate0:                           ; 0x38: 32-bit call gate, DPL 0, no params
  dw 0, CODE0
  db 0, 0x8C
  dw 0
gdt_end:
gdtr:
  dw gdt_end - gdt - 1
  dd gdt
idtr:
  dw 256 * 8 - 1
  dd idt
check: db 0
align 4
saved_esp: dd 0
align 16
tss: times 104 db 0
end_load:
align 16
idt: resb 256 * 8
  resb 4096
stack0_top:
  resb 4096
stack3_top:
end_bss:
