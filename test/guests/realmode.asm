; Real mode and back (SDM Vol. 3A, 9.9): from the multiboot 32-bit entry down to a 16-bit protected
; segment, then CR0.PE = 0 and a far jump into real mode (code copied below 1 MiB). In real mode:
; 16-bit addressing forms, INC/DEC 40-4F, PUSHA/POPA, DAA, an INT through the IVT, #DE through IVT
; vector 0 (a fault: IP is the DIV), a far call and RETF; then PE = 1 and a far jump back to 32-bit
; code. Exit AL = 0x10 (status 33) when all pass, AL = check number otherwise.
bits 32
org 0x100000
%include "multiboot.inc"

LOW equ 0x8000                      ; real-mode code runs here (segment 0x0800, offset 0)

start:
  mov esp, stack_top
  lgdt [gdtr]
  jmp 0x08:.reload
.reload:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  ; copy the 16-bit code below 1 MiB
  mov esi, rm_start
  mov edi, LOW
  mov ecx, rm_end - rm_start
  rep movsb
  mov [saved_esp], esp
  jmp 0x18:(LOW + (pm16 - rm_start))  ; 16-bit protected-mode code segment, base 0

back_in_pm:                          ; reached from real mode by a far jump to 0x08:back_in_pm
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov esp, [saved_esp]
  cmp byte [LOW + (result - rm_start)], 0x55
  jne .fail
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit
.fail:
  mov esi, failmsg
  call print
  mov al, [LOW + (check - rm_start)]
  jmp exit

allok: db "ok 7 back in 32-bit protected mode", 10, "all real-mode checks passed", 10, 0
failmsg: db "FAIL", 10, 0

align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF              ; 0x08 code32
  dq 0x00CF92000000FFFF              ; 0x10 data32
  dq 0x00009A000000FFFF              ; 0x18 code16, base 0, limit 64 KiB
  dq 0x000092000000FFFF              ; 0x20 data16
gdtr:
  dw 5 * 8 - 1
  dd gdt
saved_esp: dd 0

; ---------------- 16-bit code, copied to LOW; labels are used as offsets from rm_start ----------
bits 16
rm_start:
pm16:
  mov ax, 0x20
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov eax, cr0
  and eax, ~1
  mov cr0, eax
  jmp 0x0800:(rm_entry - rm_start)

rm_entry:
  mov ax, 0x0800
  mov ds, ax
  mov es, ax
  xor ax, ax
  mov ss, ax
  mov sp, 0x7c00
  lidt [rm_idtr - rm_start]         ; IVT at 0

  ; 1: 16-bit addressing: [bx+si+disp8] and [bp+di] (default segment SS)
  mov byte [check - rm_start], 1
  mov bx, table - rm_start
  mov si, 2
  mov al, [bx+si+1]                 ; table[3] = 0x44
  cmp al, 0x44
  jne rm_fail
  mov bp, 0x7c00 - 16
  mov di, 4
  mov word [ss:0x7c00 - 12], 0x1234
  cmp word [bp+di], 0x1234
  jne rm_fail
  mov si, msg1 - rm_start
  call rm_print

  ; 2: INC/DEC 40-4F, PUSHA/POPA, DAA
  mov byte [check - rm_start], 2
  mov cx, 0xffff
  inc cx                            ; 41
  jnz rm_fail
  dec cx                            ; 49
  cmp cx, 0xffff
  jne rm_fail
  mov ax, 1
  mov bx, 2
  pusha
  xor ax, ax
  xor bx, bx
  popa
  cmp ax, 1
  jne rm_fail
  cmp bx, 2
  jne rm_fail
  mov al, 0x19
  add al, 0x28
  daa                               ; 19 + 28 = 47 (BCD)
  cmp al, 0x47
  jne rm_fail
  mov si, msg2 - rm_start
  call rm_print

  ; 3: INT 0x30 through the IVT
  mov byte [check - rm_start], 3
  push ds                           ; the IVT is at linear 0: DS = 0 to fill it
  xor ax, ax
  mov ds, ax
  mov word [0x30 * 4], int30 - rm_start
  mov word [0x30 * 4 + 2], 0x0800
  mov word [0 * 4], int0 - rm_start
  mov word [0 * 4 + 2], 0x0800
  pop ds
  mov byte [flag - rm_start], 0
  int 0x30
  cmp byte [flag - rm_start], 0x30
  jne rm_fail
  mov si, msg3 - rm_start
  call rm_print

  ; 4: #DE in real mode: IVT vector 0, IP = the DIV
  mov byte [check - rm_start], 4
  xor cx, cx
  mov ax, 5
de_site:
  div cl
  cmp byte [flag - rm_start], 0xde
  jne rm_fail
  mov si, msg4 - rm_start
  call rm_print

  ; 5: far call and RETF in real mode
  mov byte [check - rm_start], 5
  call 0x0800:(far_target - rm_start)
  cmp byte [flag - rm_start], 0xfa
  jne rm_fail
  mov si, msg5 - rm_start
  call rm_print

  ; 6: back to protected mode
  mov byte [check - rm_start], 6
  mov si, msg6 - rm_start
  call rm_print
  mov byte [result - rm_start], 0x55
  cli
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  jmp dword 0x08:back_in_pm

rm_fail:
  mov si, failmsg16 - rm_start
  call rm_print
  mov al, [check - rm_start]
  out DEBUG_EXIT, al
  hlt

int30:
  mov byte [flag - rm_start], 0x30
  iret
int0:
  push bp
  mov bp, sp
  cmp word [bp + 2], de_site - rm_start    ; saved IP
  jne rm_fail
  cmp word [bp + 4], 0x0800                ; saved CS
  jne rm_fail
  add word [bp + 2], 2                     ; skip DIV CL
  pop bp
  mov byte [flag - rm_start], 0xde
  iret
far_target:
  mov byte [flag - rm_start], 0xfa
  retf

rm_print:                                   ; DS:SI -> COM1
  mov al, [si]
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
  inc si
  jmp rm_print
.done:
  ret

rm_idtr: dw 0x3ff
  dd 0
table: db 0x11, 0x22, 0x33, 0x44
check: db 0
flag: db 0
result: db 0
msg1: db "ok 1 16-bit addressing in real mode", 10, 0
msg2: db "ok 2 INC/DEC 40-4F, PUSHA/POPA, DAA", 10, 0
msg3: db "ok 3 INT 0x30 through the IVT", 10, 0
msg4: db "ok 4 #DE through IVT vector 0 with IP at the DIV", 10, 0
msg5: db "ok 5 far CALL and RETF", 10, 0
msg6: db "ok 6 leaving real mode", 10, 0
failmsg16: db "FAIL", 10, 0
rm_end:

bits 32
end_load:
  resb 4096
stack_top:
end_bss:
