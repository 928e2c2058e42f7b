; A 64 KiB firmware image for `hvlab boot --bios` (and `qemu-system-x86_64 -bios`): execution starts
; at the reset vector FFFFFFF0h (the image's last 16 bytes, SDM Vol. 3A 9.1.4), jumps to the low
; copy at F000:xxxx, prints from real mode, switches to 32-bit protected mode, prints, and exits
; through isa-debug-exit with AL = 0x10 (status 33).
COM1 equ 0x3F8
DEBUG_EXIT equ 0xF4
bits 16
org 0                                ; offsets within the F000 segment (linear 0xF0000)

start16:
  cli
  xor ax, ax
  mov ss, ax
  mov sp, 0x7000
  mov ax, cs
  mov ds, ax                         ; DS = F000h: strings are in the image
  mov si, msg_real
  call print16
  o32 lgdt [gdtr]
  mov eax, cr0
  or eax, 1
  mov cr0, eax
  jmp dword 0x08:(0xF0000 + start32)

print16:
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
  jmp print16
.done:
  ret

bits 32
start32:
  mov ax, 0x10
  mov ds, ax
  mov ss, ax
  mov esp, 0x7000
  mov esi, 0xF0000 + msg_prot
.next:
  mov al, [esi]
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
  inc esi
  jmp .next
.done:
  mov al, 0x10
  out DEBUG_EXIT, al
  hlt

msg_real: db "bios: reset vector reached, running in real mode", 10, 0
msg_prot: db "bios: 32-bit protected mode", 10, 0
align 8
gdt:
  dq 0
  dq 0x00CF9A000000FFFF
  dq 0x00CF92000000FFFF
gdtr:
  dw 3 * 8 - 1
  dd 0xF0000 + gdt

times 0xFFF0 - ($ - $$) db 0xFF
bits 16
reset_vector:                        ; FFFFFFF0h: CS base FFFF0000h, IP FFF0h
  jmp 0xF000:start16
times 0x10000 - ($ - $$) db 0xFF
