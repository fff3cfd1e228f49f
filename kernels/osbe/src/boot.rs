//! Boot: the first instructions of the kernel the CPU runs.
//!
//! QEMU's `-kernel` option is a multiboot (v1) loader: it finds the header below, loads the ELF
//! at 1 MiB and jumps to `_start` in 32-bit protected mode, with paging and interrupts off,
//! `eax` = 0x2BADB002 and `ebx` = address of the multiboot information. There is no stack yet,
//! and the loader's GDT may be anywhere: both are ours to set up before any Rust code runs.

use core::arch::global_asm;

global_asm!(
    r#"
// The multiboot header: magic, flags, checksum. The three must add up to 0 (mod 2^32).
// flags = 0: we ask the loader for nothing; it reads the load addresses from the ELF headers.
.section .multiboot, "a"
.align 4
.long 0x1BADB002
.long 0
.long -(0x1BADB002 + 0)

// The boot stack: 16 KiB in .bss. Stacks grow down, so we start at the top.
.section .bss
.align 16
boot_stack_bottom:
.skip 16384
boot_stack_top:

// Our own GDT: a flat 4 GiB code segment (selector 0x08) and data segment (0x10), ring 0.
// The IDT (interrupts.rs) refers to the code selector 0x08.
.section .data
.align 8
gdt:
.quad 0                         // the null descriptor the CPU requires
.quad 0x00CF9A000000FFFF        // 0x08: code, base 0, limit 4 GiB, execute/read, 32-bit
.quad 0x00CF92000000FFFF        // 0x10: data, base 0, limit 4 GiB, read/write, 32-bit
gdt_end:
gdt_descriptor:
.word gdt_end - gdt - 1         // limit: size of the table minus one
.long gdt                       // base address

.section .text
.global _start
_start:
    cli                         // no interrupts until we have an IDT (we never enable them)
    mov esp, offset boot_stack_top

    lgdt [gdt_descriptor]
    mov cx, 0x10                // reload the data segment registers with our data selector...
    mov ds, cx
    mov es, cx
    mov fs, cx
    mov gs, cx
    mov ss, cx
    ljmp 0x08, offset reload_cs // ...and cs, with a far jump to the next instruction
reload_cs:
    sub esp, 8                  // keep the stack 16-byte aligned at the call (cdecl)
    push ebx                    // 2nd argument: multiboot information
    push eax                    // 1st argument: multiboot magic
    call kernel_main            // never returns
boot_halt:
    hlt
    jmp boot_halt
"#
);
