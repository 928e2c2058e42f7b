; TF single-step (#DB after each instruction, DR6.BS), MOV to/from debug registers, an instruction
; breakpoint in DR0 (#DB fault before the instruction, DR6.B0), and the
; descriptor probes LAR/LSL/VERR/VERW (SDM Vol. 3B 18.3.1.4; Vol. 2A LAR/LSL, Vol. 2B VERR/VERW).
; Exit AL = 0x10 (status 33) when all pass, AL = check number otherwise.
bits 32
org 0x100000
%include "multiboot.inc"

start:
  mov esp, stack_top
  lgdt [gdtr]
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov dword [idt + 1 * 8], 0           ; gate 1 -> handle_db
  mov eax, handle_db
  mov [idt + 1 * 8], ax
  mov word [idt + 1 * 8 + 2], 0x08
  mov byte [idt + 1 * 8 + 5], 0x8E
  shr eax, 16
  mov [idt + 1 * 8 + 6], ax
  lidt [idtr]

  ; 1: single-step three instructions: #DB after each, EIPs recorded, DR6.BS set
  mov byte [check], 1
  xor eax, eax
  mov dr6, eax
  pushfd
  or dword [esp], 0x100
  popfd                              ; TF = 1 from here: the trap comes after the NEXT instruction
step1:
  nop
step2:
  inc eax
step3:
  inc eax
step4:
  cmp dword [steps], 3
  jne fail
  cmp dword [eips], step2
  jne fail
  cmp dword [eips + 4], step3
  jne fail
  cmp dword [eips + 8], step4
  jne fail
  mov esi, ok1
  call print

  ; 2: debug registers keep what is written (DR7 bit 10 reads as 1)
  mov byte [check], 2
  mov eax, 0x12345678
  mov dr0, eax
  mov ebx, dr0
  cmp ebx, eax
  jne fail
  xor eax, eax
  mov dr7, eax
  mov ebx, dr7
  cmp ebx, 0x400
  jne fail
  mov esi, ok2
  call print

  ; 3: LAR/LSL on the code segment, VERR/VERW on code and data
  mov byte [check], 3
  mov ax, 0x08
  lar ebx, ax
  jnz fail
  and ebx, 0x00F0FE00                ; G D/B L AVL, P DPL S type (without the accessed bit)
  cmp ebx, 0x00C09A00
  jne fail
  lsl ecx, ax
  jnz fail
  cmp ecx, 0xFFFFFFFF
  jne fail
  verr ax
  jnz fail                           ; readable code
  verw ax
  jz fail                            ; code is never writable
  mov ax, 0x10
  verw ax
  jnz fail
  mov ax, 0x40                       ; beyond the GDT: ZF = 0, no fault
  lar ebx, ax
  jz fail
  mov esi, ok3
  call print

  ; 4: instruction breakpoint: DR0 = bp_site, DR7.L0 with R/W0 = 00 (execute), LEN0 = 00
  mov byte [check], 4
  mov dword [bp_hits], 0
  xor eax, eax
  mov dr6, eax
  mov eax, bp_site
  mov dr0, eax
  mov eax, 1
  mov dr7, eax
  mov ecx, 5
bp_site:
  inc ecx                            ; the #DB fault comes before this executes
  cmp dword [bp_hits], 1
  jne fail
  cmp ecx, 6                         ; ... and it executed once afterwards
  jne fail
  mov esi, ok4
  call print

  ; 5: data breakpoints are traps: DR1 = watched (R/W1 = 01 writes, LEN1 = 11 four bytes), DR2 =
  ; watched+8 (R/W2 = 11 reads or writes, LEN2 = 01 two bytes). A read of DR1's dword does not hit;
  ; a write does, after the instruction; a read of DR2's word hits with B2.
  mov byte [check], 5
  mov dword [bp_hits], 0
  xor eax, eax
  mov dr6, eax
  mov eax, watched
  mov dr1, eax
  add eax, 8
  mov dr2, eax
  mov eax, 0x07d00014                ; L1, L2; R/W1 = 01 LEN1 = 11; R/W2 = 11 LEN2 = 01
  mov dr7, eax
  mov ecx, [watched]                 ; a read: no hit on the write-only DR1
  cmp dword [bp_hits], 0
  jne fail
  mov dword [watched], 0x1234        ; the write completes, then #DB (B1)
data_write_done:
  cmp dword [bp_hits], 1
  jne fail
  cmp dword [watched], 0x1234
  jne fail
  mov cx, [watched + 9]              ; overlaps the word at watched+8: B2
data_read_done:
  cmp dword [bp_hits], 2
  jne fail
  xor eax, eax
  mov dr7, eax
  mov esi, ok5
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit

handle_db:
  cmp byte [check], 4
  je .breakpoint
  cmp byte [check], 5
  je .data
  mov eax, dr6
  test eax, 0x4000                   ; BS
  jz fail
  mov eax, [steps]
  mov ecx, [esp]
  mov [eips + eax * 4], ecx
  inc dword [steps]
  cmp dword [steps], 3
  jne .more
  and dword [esp + 8], ~0x100        ; clear TF in the saved EFLAGS after three steps
.more:
  mov eax, 0                         ; (EAX is clobbered; the checks do not use it)
  iretd
.breakpoint:
  mov eax, dr6
  test eax, 1                        ; B0
  jz fail
  test eax, 0x4000                   ; not a single step
  jnz fail
  cmp dword [esp], bp_site           ; a fault: EIP is the instruction
  jne fail
  inc dword [bp_hits]
  xor eax, eax
  mov dr7, eax                       ; disarm, so the instruction can run
  iretd

.data:
  mov eax, dr6
  test eax, 0x4000                   ; not a single step
  jnz fail
  mov ecx, [bp_hits]
  test ecx, ecx
  jnz .second
  test eax, 2                        ; B1, and a trap: EIP is after the write
  jz fail
  cmp dword [esp], data_write_done
  jne fail
  jmp .counted
.second:
  test eax, 4                        ; B2
  jz fail
  cmp dword [esp], data_read_done
  jne fail
.counted:
  inc dword [bp_hits]
  xor eax, eax
  mov dr6, eax
  iretd

fail:
  mov esi, failmsg
  call print
  mov al, [check]
  jmp exit

ok1: db "ok 1 single-step: #DB after POPF's next instruction, then after each one", 10, 0
ok2: db "ok 2 MOV to/from DR0 and DR7", 10, 0
ok3: db "ok 3 LAR, LSL, VERR, VERW", 10, 0
ok4: db "ok 4 #DB fault at an instruction breakpoint (DR0, DR7), DR6.B0", 10, 0
ok5: db "ok 5 #DB traps at data breakpoints: writes (DR1) and reads or writes (DR2), DR6.Bn", 10, 0
allok: db "all debug checks passed", 10, 0
failmsg: db "FAIL", 10, 0
align 4
steps: dd 0
bp_hits: dd 0
eips: dd 0, 0, 0, 0
check: db 0
align 8
watched: dd 0, 0, 0, 0
align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF
  dq 0x00CF92000000FFFF
gdtr:
  dw 3 * 8 - 1
  dd gdt
idtr:
  dw 256 * 8 - 1
  dd idt
end_load:
align 8
idt: resb 256 * 8
  resb 4096
stack_top:
end_bss:
