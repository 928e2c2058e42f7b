; Segment limits (SDM Vol. 3A, 5.3): a dword read just inside a 4 KiB data segment succeeds and one
; crossing its limit is #GP(0); an expand-down segment rejects offsets at or below its limit; an
; SS-relative access beyond the stack segment's limit is #SS(0); string instructions and MOV moffs
; are checked too. QEMU TCG does not check data segment
; limits, so this kernel is compared with the manual, not with QEMU.
; Exit AL = 0x10 (status 33) when all pass, AL = check number otherwise.
bits 32
org 0x100000
%include "multiboot.inc"

SMALL equ 0x18                        ; data, base 0, limit 0xFFF
DOWN  equ 0x20                        ; data, expand-down, limit 0xFFF, B = 1 (offsets 0x1000..0xFFFFFFFF)
SMALLSS equ 0x28                      ; writable data for SS, limit 0xFFF

start:
  mov esp, stack_top
  lgdt [gdtr]
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov edi, 13
  mov ebx, handle_gp
  call set_gate
  mov edi, 12
  mov ebx, handle_ss
  call set_gate
  lidt [idtr]

  ; 1: expand-up: 0xFFC..0xFFF is inside, 0xFFD..0x1000 crosses the limit
  mov byte [check], 1
  mov ax, SMALL
  mov es, ax
  mov ebx, 0xFFC
  mov eax, [es:ebx]
  mov ebx, 0xFFD
  mov dword [expect_site], site1
  mov dword [expect_len], 3
site1:
  mov eax, [es:ebx]                   ; 26 8B 03
  cmp byte [seen], 1
  jne fail
  mov esi, ok1
  call print

  ; 2: expand-down: 0x1000 is allowed, 0xFFF is not
  mov byte [check], 2
  mov ax, DOWN
  mov es, ax
  mov ebx, 0x1000
  mov eax, [es:ebx]
  mov ebx, 0xFFF
  mov dword [expect_site], site2
  mov dword [expect_len], 3
site2:
  mov eax, [es:ebx]
  cmp byte [seen], 2
  jne fail
  mov esi, ok2
  call print

  ; 3: an SS-relative operand beyond SS's limit is #SS(0)
  mov byte [check], 3
  mov ax, SMALLSS
  mov fs, ax                          ; (FS keeps the selector for the handler's check)
  mov ebp, 0x2000
  mov ecx, esp
  mov ax, SMALLSS
  mov dx, ss
  mov ss, ax
  mov esp, 0x800
site3:
  mov eax, [ebp]                      ; 8B 45 00: default segment SS
  mov ss, dx
  mov esp, ecx
  cmp byte [seen], 3
  jne fail
  mov esi, ok3
  call print

  ; 4: a string instruction's source beyond the segment's limit: ES:ESI = 0x1000 with ES limited to 0xFFF
  mov byte [check], 4
  mov ax, SMALL
  mov es, ax
  mov esi, 0xFFF
  es lodsb                            ; the last byte inside: fine
  mov esi, 0x1000
  mov dword [expect_site], site4
  mov dword [expect_len], 2
site4:
  es lodsb                            ; 26 AC
  cmp byte [seen], 4
  jne fail
  mov esi, ok4
  call print

  ; 5: MOV EAX, moffs crossing the limit: [ES:0xFFE] as a dword
  mov byte [check], 5
  mov dword [expect_site], site5
  mov dword [expect_len], 6
site5:
  mov eax, [es:dword 0xFFE]           ; 26 A1 FE 0F 00 00
  cmp byte [seen], 5
  jne fail
  mov esi, ok5
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit

handle_gp:
  cmp dword [esp], 0
  jne fail
  mov eax, [esp + 4]
  cmp eax, [expect_site]
  jne fail
  mov al, [check]
  mov [seen], al
  add esp, 4
  mov eax, [expect_len]
  add [esp], eax                      ; skip the faulting instruction
  iretd

handle_ss:                            ; runs on the small stack segment (the TSS is not involved)
  cmp dword [ss:esp], 0
  jne fail
  cmp dword [ss:esp + 4], site3
  jne fail
  mov byte [seen], 3
  add esp, 4
  add dword [ss:esp], 3
  iretd

fail:
  mov ax, 0x10
  mov ds, ax
  mov esi, failmsg
  call print
  mov al, [check]
  jmp exit

DEFINE_SET_GATE

ok1: db "ok 1 #GP(0) for a dword crossing a 4 KiB segment limit", 10, 0
ok2: db "ok 2 #GP(0) below an expand-down segment's limit", 10, 0
ok3: db "ok 3 #SS(0) for an SS-relative operand beyond SS's limit", 10, 0
ok4: db "ok 4 #GP(0) for a string source beyond its segment's limit", 10, 0
ok5: db "ok 5 #GP(0) for MOV moffs crossing the limit", 10, 0
allok: db "all segment-limit checks passed", 10, 0
failmsg: db "FAIL", 10, 0
check: db 0
seen: db 0
align 4
expect_site: dd 0
expect_len: dd 0
align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF               ; 0x08 code
  dq 0x00CF92000000FFFF               ; 0x10 data
  dq 0x0040920000000FFF               ; 0x18 data, limit 0xFFF
  dq 0x0040960000000FFF               ; 0x20 data, expand-down, limit 0xFFF, B
  dq 0x0040920000000FFF               ; 0x28 stack data, limit 0xFFF
gdtr:
  dw 6 * 8 - 1
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
