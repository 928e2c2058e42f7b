; Protected-mode exceptions and interrupts (SDM Vol. 3A, chapter 6), checked from inside the guest:
; its own GDT, IDT and TSS; #DE, #BP, #UD and #GP(selector) with the right saved EIP and error code;
; INT 0x80 from ring 3 through a DPL-3 gate onto the TSS ring-0 stack, and IRET back to ring 3.
; Prints one line per check; exits with AL = 0x10 (status 33) when all pass, else AL = check number.
bits 32
org 0x100000
%include "multiboot.inc"

CODE0 equ 0x08
DATA0 equ 0x10
CODE3 equ 0x18 | 3
DATA3 equ 0x20 | 3
TSSSEL equ 0x28

start:
  mov esp, stack0_top
  lgdt [gdtr]
  jmp CODE0:.reload
.reload:
  mov ax, DATA0
  mov ds, ax
  mov es, ax
  mov ss, ax
  ; TSS descriptor base and the ring-0 stack
  mov eax, tss
  mov [gdt_tss + 2], ax
  shr eax, 16
  mov [gdt_tss + 4], al
  mov [gdt_tss + 7], ah
  mov dword [tss + 4], stack0_top
  mov word [tss + 8], DATA0
  mov ax, TSSSEL
  ltr ax
  ; IDT gates: interrupt gates (type E), DPL 0 except vector 0x80 (DPL 3)
  mov edi, 0
  mov ebx, handle_de
  call set_gate
  mov edi, 3
  mov ebx, handle_bp
  call set_gate
  mov edi, 6
  mov ebx, handle_ud
  call set_gate
  mov edi, 13
  mov ebx, handle_gp
  call set_gate
  mov edi, 0x80
  mov ebx, handle_syscall
  call set_gate
  mov byte [idt + 0x80 * 8 + 5], 0xEE   ; P, DPL 3, 32-bit interrupt gate
  lidt [idtr]

  ; 1: #DE, a fault: the saved EIP is the DIV itself
  mov byte [check], 1
  xor ecx, ecx
  mov eax, 7
de_site:
  div ecx
  cmp byte [seen], 1
  jne fail
  mov esi, ok1
  call print

  ; 2: #BP, a trap: the saved EIP follows INT3
  mov byte [check], 2
  mov byte [seen], 0
  int3
bp_after:
  cmp byte [seen], 2
  jne fail
  mov esi, ok2
  call print

  ; 3: #UD at UD2
  mov byte [check], 3
  mov byte [seen], 0
ud_site:
  ud2
  cmp byte [seen], 3
  jne fail
  mov esi, ok3
  call print

  ; 4: #GP(0x30): a selector beyond the GDT limit; error code = selector
  mov byte [check], 4
  mov byte [seen], 0
  mov ax, 0x30
gp_site:
  mov ds, ax
  cmp byte [seen], 4
  jne fail
  mov esi, ok4
  call print

  ; 5-6: to ring 3 by IRET; SYSENTER to ring 0 and SYSEXIT back; INT 0x80 to ring 0 on the TSS stack
  mov ecx, 0x174                    ; SYSENTER_CS: ring 0 CS 0x08, SS 0x10; SYSEXIT CS 0x1B, SS 0x23
  mov eax, CODE0
  xor edx, edx
  wrmsr
  mov ecx, 0x175                    ; SYSENTER_ESP
  mov eax, sysenter_stack_top
  wrmsr
  mov ecx, 0x176                    ; SYSENTER_EIP
  mov eax, sysenter_target
  wrmsr
  mov byte [check], 5
  push DATA3
  push stack3_top
  pushfd
  push CODE3
  push user_code
  iretd

user_code:
  ; (IRET to ring 3 loaded DS/ES with null selectors: their DPL 0 is below CPL 3)
  xor ebx, ebx
  mov ecx, esp
  mov edx, after_sysexit
  sysenter
after_sysexit:
  mov eax, 0xbad            ; the INT 0x80 check fails unless SYSENTER/SYSEXIT worked
  cmp ebx, 0x5e5e
  jne .report
  mov eax, 0x1234
.report:
  int 0x80
  jmp fail_user             ; the handler does not return here

sysenter_target:
  ; ring 0 through SYSENTER: CS = SYSENTER_CS, SS = CS + 8, ESP = SYSENTER_ESP, IF cleared
  mov bx, cs
  cmp bx, CODE0
  jne .bad
  mov bx, ss
  cmp bx, DATA0
  jne .bad
  cmp esp, sysenter_stack_top
  jne .bad
  mov ebx, 0x5e5e
.bad:
  sysexit                   ; back to ring 3: CS = SYSENTER_CS + 16 | 3, EIP = EDX, ESP = ECX

handle_de:
  cmp dword [esp], de_site
  jne fail
  mov byte [seen], 1
  add dword [esp], 2        ; skip the 2-byte DIV
  iretd
handle_bp:
  cmp dword [esp], bp_after
  jne fail
  mov byte [seen], 2
  iretd
handle_ud:
  cmp dword [esp], ud_site
  jne fail
  mov byte [seen], 3
  add dword [esp], 2
  iretd
handle_gp:
  cmp dword [esp], 0x30     ; error code: the offending selector
  jne fail
  cmp dword [esp + 4], gp_site
  jne fail
  mov byte [seen], 4
  add esp, 4                ; drop the error code
  add dword [esp], 2        ; skip the 2-byte MOV DS, AX
  iretd
handle_syscall:
  ; frame on the ring-0 stack: EIP, CS, EFLAGS, ESP, SS (privilege change)
  cmp esp, stack0_top - 20
  jne fail
  cmp dword [esp + 4], CODE3
  jne fail
  cmp dword [esp + 16], DATA3
  jne fail
  cmp dword [esp + 12], stack3_top
  jne fail
  cmp eax, 0x1234
  jne fail
  mov ax, DATA0
  mov ds, ax
  mov esi, ok5
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit

fail_user:
  int3
fail:
  mov esi, failmsg
  call print
  mov al, [check]
  jmp exit

DEFINE_SET_GATE

ok1: db "ok 1 #DE at the faulting DIV", 10, 0
ok2: db "ok 2 #BP after INT3", 10, 0
ok3: db "ok 3 #UD at UD2", 10, 0
ok4: db "ok 4 #GP(0x30) from a selector beyond the GDT", 10, 0
ok5: db "ok 5 SYSENTER/SYSEXIT, then INT 0x80 from ring 3 onto the TSS stack", 10, 0
allok: db "all exception checks passed", 10, 0
failmsg: db "FAIL", 10, 0

align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF     ; 0x08 code, DPL 0
  dq 0x00CF92000000FFFF     ; 0x10 data, DPL 0
  dq 0x00CFFA000000FFFF     ; 0x18 code, DPL 3
  dq 0x00CFF2000000FFFF     ; 0x20 data, DPL 3
gdt_tss:
  dq 0x0000890000000067     ; 0x28 32-bit TSS (base patched at run time), limit 0x67
gdt_end:
gdtr:
  dw gdt_end - gdt - 1
  dd gdt
idtr:
  dw 256 * 8 - 1
  dd idt
check: db 0
seen: db 0
align 16
tss: times 104 db 0
end_load:
align 16
idt: resb 256 * 8
  resb 4096
stack0_top:
  resb 4096
stack3_top:
  resb 512
sysenter_stack_top:
end_bss:
