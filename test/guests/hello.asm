; The smallest multiboot kernel: checks the boot loader magic, prints, exits with status 33 (AL=16).
bits 32
org 0x100000
%include "multiboot.inc"

start:
  mov esp, stack_top
  cmp eax, 0x2BADB002
  jne .bad
  mov esi, msg
  call print
  mov al, 16
  jmp exit
.bad:
  mov esi, badmsg
  call print
  mov al, 1
  jmp exit

msg: db "hello from hvlab", 10, 0
badmsg: db "bad multiboot magic", 10, 0
end_load:
  resb 4096
stack_top:
end_bss:
