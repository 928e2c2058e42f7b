; IA-32e mode from a multiboot entry (SDM Vol. 3A, 9.8.5): PAE page tables, EFER.LME, CR0.PG, a far
; jump to a 64-bit code segment. Then, in 64-bit mode: a second (high) mapping of the same frames,
; #PF with CR2 and the error code for a not-present page and for a write to a read-only page under
; CR0.WP, #GP for a non-canonical address, an interrupt through a 64-bit gate onto an IST stack, and
; ring 3 by IRETQ, SYSCALL/SYSRET from ring 3 (RCX, R11, STAR selectors), and INT 0x80 back to ring 0
; on TSS.RSP0; finally back down to 32-bit protected mode with paging off. Exit AL = 0x10 (status 33)
; when all pass.
bits 32
org 0x100000
%include "multiboot.inc"

CODE32 equ 0x08
DATA   equ 0x10
CODE64 equ 0x18
DATA3  equ 0x20 | 3
CODE3  equ 0x28 | 3
TSS64  equ 0x30
HIGH   equ 0xFFFF800000000000     ; PML4[256]: a second mapping of the first GiB

start:
  mov esp, stack0_top
  mov esi, hello
  call print
  ; PML4[0] and PML4[256] -> PDPT; PDPT[0] -> PD; PD: 2 MiB pages, PD[1] read-only
  mov eax, pdpt
  or eax, 7                        ; P, RW, US
  mov [pml4], eax
  mov [pml4 + 256 * 8], eax
  mov eax, pd
  or eax, 7
  mov [pdpt], eax
  xor ecx, ecx
.fill:
  mov eax, ecx
  shl eax, 21
  or eax, 0x87                     ; P, RW, US, PS
  cmp ecx, 1
  jne .rw
  and eax, ~2                      ; 2 MiB..4 MiB read-only
.rw:
  mov [pd + ecx * 8], eax
  inc ecx
  cmp ecx, 512
  jne .fill
  lgdt [gdtr]
  mov eax, cr4
  or eax, 0x20                     ; PAE
  mov cr4, eax
  mov eax, pml4
  mov cr3, eax
  mov ecx, 0xC0000080              ; EFER
  rdmsr
  or eax, 0x100                    ; LME
  wrmsr
  mov eax, cr0
  or eax, 0x80010000               ; PG, WP
  mov cr0, eax
  jmp CODE64:long_entry

bits 64
long_entry:
  mov ax, DATA
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov rsp, stack0_top
  mov rax, 0xC0000080
  mov ecx, eax
  rdmsr
  test eax, 0x400                  ; LMA
  jz fail
  mov rsi, ok_lma
  call print64

  ; TSS: RSP0 and IST1, then the descriptor base
  mov rax, stack0_top
  mov [tss + 4], rax
  mov rax, ist1_top
  mov [tss + 0x24], rax
  mov rax, tss
  mov [gdt_tss + 2], ax
  shr rax, 16
  mov [gdt_tss + 4], al
  mov [gdt_tss + 7], ah
  shr rax, 16
  mov [gdt_tss + 8], eax
  mov ax, TSS64
  ltr ax

  ; IDT: 64-bit interrupt gates
  mov edi, 13
  mov rbx, handle_gp
  xor edx, edx
  call set_gate
  mov edi, 14
  mov rbx, handle_pf
  call set_gate
  mov edi, 0x81
  mov rbx, handle_ist
  mov edx, 1                       ; IST1
  call set_gate
  mov edi, 0x80
  mov rbx, handle_syscall
  xor edx, edx
  call set_gate
  mov byte [idt + 0x80 * 16 + 5], 0xEE   ; DPL 3
  lidt [idtr]
  ; SYSCALL: EFER.SCE, STAR (SYSRET base 0x18 -> SS 0x20|3, CS 0x28|3; SYSCALL CS 0x18), LSTAR, SFMASK
  mov ecx, 0xC0000080
  rdmsr
  or eax, 1
  wrmsr
  mov ecx, 0xC0000081
  xor eax, eax
  mov edx, 0x00180018
  wrmsr
  mov ecx, 0xC0000082
  mov rax, handle_fastcall
  mov rdx, rax
  shr rdx, 32
  wrmsr
  mov ecx, 0xC0000084
  mov eax, 0x400                   ; SFMASK: clear DF
  xor edx, edx
  wrmsr

  ; 1: the high mapping reaches the same frame
  mov byte [check], 1
  mov rax, HIGH + probe
  mov qword [rax], 0x5a5aa5a5
  cmp qword [probe], 0x5a5aa5a5
  jne fail
  mov rsi, ok1
  call print64

  ; 2: #PF, not present, write: CR2 = the address, error code = W (2)
  mov byte [check], 2
  mov rax, 0x0000008000000000
pf1_site:
  mov qword [rax], 1
  cmp byte [seen], 2
  jne fail
  mov rsi, ok2
  call print64

  ; 3: #PF, write to a read-only page with CR0.WP = 1: error code = P | W (3)
  mov byte [check], 3
  mov byte [seen], 0
  mov rax, 0x200000
pf2_site:
  mov qword [rax], 1
  cmp byte [seen], 3
  jne fail
  mov rsi, ok3
  call print64

  ; 4: #GP(0) for a non-canonical address
  mov byte [check], 4
  mov byte [seen], 0
  mov rax, 0x0000800000000000
gp_site:
  mov qword [rax], 1
  cmp byte [seen], 4
  jne fail
  mov rsi, ok4
  call print64

  ; 5: INT 0x81 through a gate with IST1
  mov byte [check], 5
  int 0x81
  cmp byte [seen], 5
  jne fail
  mov rsi, ok5
  call print64

  ; 6: ring 3 by IRETQ, INT 0x80 back to ring 0 on TSS.RSP0
  mov byte [check], 6
  push DATA3
  push stack3_top
  pushfq
  push CODE3
  push user_code
  iretq

user_code:
  mov rax, 0x600d
  std                              ; DF=1 in ring 3: SYSCALL saves it in R11 and SFMASK clears it
  syscall
after_syscall:
  cmp byte [seen], 7
  jne fail_user
  mov rax, 0x600d
  int 0x80
fail_user:
  jmp fail_user                    ; ring 3 cannot report: the INT 0x80 check never prints

handle_fastcall:
  ; SYSCALL: CPL 0 in CODE64, RCX = the return RIP, R11 = RFLAGS (DF set in ring 3), DF now clear
  mov bx, cs
  cmp bx, CODE64
  jne fail
  lea rbx, [rel after_syscall]
  cmp rcx, rbx
  jne fail
  test r11, 0x400
  jz fail
  pushfq
  pop rbx
  test rbx, 0x400
  jnz fail
  mov byte [seen], 7
  o64 sysret

handle_pf:
  cmp byte [check], 2
  je .first
  mov rax, cr2
  cmp rax, 0x200000
  jne fail
  cmp qword [rsp], 3               ; error code: P | W
  jne fail
  lea rax, [rel pf2_site]
  cmp [rsp + 8], rax
  jne fail
  mov byte [seen], 3
  jmp .skip
.first:
  mov rax, cr2
  mov rcx, 0x0000008000000000
  cmp rax, rcx
  jne fail
  cmp qword [rsp], 2               ; error code: W, not present
  jne fail
  lea rax, [rel pf1_site]
  cmp [rsp + 8], rax
  jne fail
  mov byte [seen], 2
.skip:
  add rsp, 8                       ; error code
  add qword [rsp], 7               ; skip MOV QWORD [RAX], imm32 (48 C7 00 imm32)
  iretq

handle_gp:
  cmp qword [rsp], 0
  jne fail
  lea rax, [rel gp_site]
  cmp [rsp + 8], rax
  jne fail
  mov byte [seen], 4
  add rsp, 8
  add qword [rsp], 7
  iretq

handle_ist:
  lea rax, [rsp + 40]              ; RSP before the 5-qword frame
  cmp rax, ist1_top
  jne fail
  mov byte [seen], 5
  iretq

handle_syscall:
  ; frame on RSP0: RIP, CS, RFLAGS, RSP, SS (16-byte aligned)
  mov rax, stack0_top - 40
  cmp rsp, rax
  jne fail
  cmp qword [rsp + 8], CODE3
  jne fail
  cmp qword [rsp + 32], DATA3
  jne fail
  cmp qword [rsp + 24], stack3_top
  jne fail
  mov rsi, ok7
  call print64
  mov rsi, ok6
  call print64

  ; 8: back down (SDM Vol. 3A, 9.8.5.4): 64-bit -> compatibility mode by a far jump to a 32-bit code
  ; segment, then CR0.PG = 0 leaves IA-32e mode (EFER.LMA = 0) and EFER.LME is cleared.
  mov byte [check], 8
  mov ax, DATA
  mov ds, ax
  mov ss, ax
  mov rsp, stack0_top
  lea rax, [rel compat_ptr]
  jmp dword far [rax]              ; FF /5, m16:32 (no REX.W)
compat_ptr:
  dd compat32
  dw CODE32

bits 32
compat32:
  mov eax, cr0
  and eax, 0x7fffffff
  mov cr0, eax
  mov ecx, 0xC0000080
  rdmsr
  test eax, 0x400                  ; LMA clear now
  jnz .down_fail
  and eax, ~0x100
  wrmsr
  mov esi, ok8
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit
.down_fail:
  mov esi, failmsg
  call print
  mov al, 8
  jmp exit
bits 64

fail:
  mov rsi, failmsg
  call print64
  mov al, [check]
  out DEBUG_EXIT, al
  hlt

; set_gate: vector EDI, handler RBX, IST EDX; selector CODE64, 64-bit interrupt gate, DPL 0
set_gate:
  shl rdi, 4
  mov [idt + rdi], bx
  mov word [idt + rdi + 2], CODE64
  mov [idt + rdi + 4], dl
  mov byte [idt + rdi + 5], 0x8E
  shr rbx, 16
  mov [idt + rdi + 6], bx
  shr rbx, 16
  mov [idt + rdi + 8], ebx
  mov dword [idt + rdi + 12], 0
  ret

; print64: the 64-bit twin of print (same COM1 protocol)
print64:
  mov al, [rsi]
  test al, al
  jz .done
  mov ah, al
  mov dx, COM1 + 5
.wait:
  in al, dx
  test al, 0x20
  jz .wait
  mov dx, COM1
  mov al, ah
  out dx, al
  inc rsi
  jmp print64
.done:
  ret

hello: db "multiboot entry, going to long mode", 10, 0
ok_lma: db "ok 0 EFER.LMA set, running 64-bit code", 10, 0
ok1: db "ok 1 a second mapping reaches the same frame", 10, 0
ok2: db "ok 2 #PF not-present write: CR2 and error code 2", 10, 0
ok3: db "ok 3 #PF read-only page under CR0.WP: error code 3", 10, 0
ok4: db "ok 4 #GP(0) for a non-canonical address", 10, 0
ok5: db "ok 5 interrupt through a gate onto the IST1 stack", 10, 0
ok6: db "ok 6 INT 0x80 from ring 3 onto TSS.RSP0", 10, 0
ok7: db "ok 7 SYSCALL from ring 3 and SYSRET back (RCX, R11, STAR)", 10, 0
ok8: db "ok 8 back to 32-bit protected mode: compatibility mode, then paging and IA-32e off", 10, 0
allok: db "all long-mode checks passed", 10, 0
failmsg: db "FAIL", 10, 0

align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF            ; 0x08 code32
  dq 0x00CF92000000FFFF            ; 0x10 data
  dq 0x00AF9A000000FFFF            ; 0x18 code64 (L=1)
  dq 0x00CFF2000000FFFF            ; 0x20 data, DPL 3
  dq 0x00AFFA000000FFFF            ; 0x28 code64, DPL 3
gdt_tss:
  dq 0x0000890000000067            ; 0x30 64-bit TSS (base patched), 16 bytes
  dq 0
gdt_end:
gdtr:
  dw gdt_end - gdt - 1
  dq gdt
idtr:
  dw 256 * 16 - 1
  dq idt
check: db 0
seen: db 0
align 8
probe: dq 0
align 16
tss: times 104 db 0
end_load:
align 4096
pml4: resb 4096
pdpt: resb 4096
pd: resb 4096
idt: resb 256 * 16
  resb 4096
stack0_top:
  resb 4096
stack3_top:
  resb 4096
ist1_top:
end_bss:
