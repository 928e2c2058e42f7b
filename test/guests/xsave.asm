; XSAVE for the x87 and SSE components (SDM Vol. 1, chapter 13): CPUID.1:ECX.XSAVE and the OSXSAVE
; bit that follows CR4.OSXSAVE, XSETBV/XGETBV of XCR0, XSAVE then XRSTOR of XMM0 and ST(0), and
; XRSTOR of a component whose XSTATE_BV bit is clear (its initial state: XMM0 = 0).
; Exit AL = 0x10 (status 33) when all pass, AL = check number otherwise.
bits 32
org 0x100000
%include "multiboot.inc"

start:
  mov esp, stack_top
  ; 1: OSXSAVE in CPUID follows CR4 (OSFXSR | OSXMMEXCPT | OSXSAVE)
  mov byte [check], 1
  mov eax, 1
  cpuid
  test ecx, 1 << 26
  jz fail
  test ecx, 1 << 27
  jnz fail
  mov eax, cr4
  or eax, (1 << 9) | (1 << 10) | (1 << 18)
  mov cr4, eax
  mov eax, 1
  cpuid
  test ecx, 1 << 27
  jz fail
  mov esi, ok1
  call print

  ; 2: XCR0 = x87 | SSE
  mov byte [check], 2
  xor ecx, ecx
  mov eax, 3
  xor edx, edx
  xsetbv
  xor ecx, ecx
  xgetbv
  cmp eax, 3
  jne fail
  mov esi, ok2
  call print

  ; 3: XSAVE, clobber, XRSTOR
  mov byte [check], 3
  movdqu xmm0, [pattern]
  fld1
  mov eax, 3
  xor edx, edx
  xsave [area]
  cmp dword [area + 512], 3          ; XSTATE_BV
  jne fail
  cmp dword [area + 160], 0x11223344 ; XMM0 in the legacy area
  jne fail
  pxor xmm0, xmm0
  fninit
  mov eax, 3
  xor edx, edx
  xrstor [area]
  movd eax, xmm0
  cmp eax, 0x11223344
  jne fail
  fstp qword [tmp]
  cmp dword [tmp + 4], 0x3ff00000    ; 1.0
  jne fail
  mov esi, ok3
  call print

  ; 4: XSTATE_BV.SSE = 0: XRSTOR gives SSE its initial state
  mov byte [check], 4
  movdqu xmm0, [pattern]
  mov dword [area + 512], 1
  mov eax, 3
  xor edx, edx
  xrstor [area]
  movd eax, xmm0
  test eax, eax
  jnz fail
  mov esi, ok4
  call print
  mov esi, allok
  call print
  mov al, 0x10
  jmp exit

fail:
  mov esi, failmsg
  call print
  mov al, [check]
  jmp exit

ok1: db "ok 1 CPUID.1:ECX.OSXSAVE follows CR4.OSXSAVE", 10, 0
ok2: db "ok 2 XSETBV/XGETBV XCR0 = 3", 10, 0
ok3: db "ok 3 XSAVE then XRSTOR restores XMM0 and ST(0)", 10, 0
ok4: db "ok 4 XRSTOR with XSTATE_BV.SSE clear initialises XMM0", 10, 0
allok: db "all XSAVE checks passed", 10, 0
failmsg: db "FAIL", 10, 0
check: db 0
align 16
pattern: dd 0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00
tmp: dq 0
end_load:
align 64
area: resb 1024
  resb 4096
stack_top:
end_bss:
