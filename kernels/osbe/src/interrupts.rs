//! Interrupts and CPU exceptions: the IDT (interrupt descriptor table) tells the CPU where to
//! jump for each of its 256 vectors. We fill in the 32 CPU exceptions and, from syscall.rs,
//! the system call vector 0x80.
//!
//! Every vector gets a tiny assembly stub that makes the stack look the same for all of them
//! (a `TrapFrame`), then calls `interrupt_dispatch` in Rust. The frame is written back into
//! the registers on the way out, so a handler can return a value in `frame.eax`.

use core::arch::{asm, global_asm};

/// The registers as the stubs below leave them on the stack, lowest address first.
#[repr(C)]
pub struct TrapFrame {
    // pushed by `pushad`
    pub edi: u32,
    pub esi: u32,
    pub ebp: u32,
    pub esp_unused: u32,
    pub ebx: u32,
    pub edx: u32,
    pub ecx: u32,
    pub eax: u32,
    // pushed by the stub
    pub vector: u32,
    pub error_code: u32,
    // pushed by the CPU
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
}

global_asm!(
    r#"
// A stub for a vector where the CPU pushes no error code: push a 0 in its place.
.macro isr_no_error num
isr_\num:
    push 0
    push \num
    jmp isr_common
.endm

// A stub for a vector where the CPU has already pushed an error code.
.macro isr_error num
isr_\num:
    push \num
    jmp isr_common
.endm

.section .text
.irp num, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31,128
isr_no_error \num
.endr
.irp num, 8,10,11,12,13,14,17,21,29,30
isr_error \num
.endr

isr_common:
    pushad                      // save eax, ecx, edx, ebx, esp, ebp, esi, edi
    cld                         // Rust code expects the direction flag clear
    push esp                    // argument: a pointer to the TrapFrame on the stack
    call interrupt_dispatch
    add esp, 4
    popad                       // restore the registers, with any change the handler made
    add esp, 8                  // drop the vector number and the error code
    iretd                       // back to where the interrupt happened

// The stubs' addresses, for Rust to put into the IDT.
.section .rodata
.align 4
.global isr_stubs
isr_stubs:
.irp num, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
.long isr_\num
.endr
.global isr_stub_128
isr_stub_128:
.long isr_128
"#
);

unsafe extern "C" {
    static isr_stubs: [u32; 32];
    static isr_stub_128: u32;
}

/// One IDT entry: where the handler is (split in two halves) and what kind of gate it is.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16, // code segment of the handler: 0x08, our GDT's code segment (boot.rs)
    zero: u8,
    flags: u8, // present bit, privilege level allowed to `int` here, gate type
    offset_high: u16,
}

const MISSING: Gate = Gate { offset_low: 0, selector: 0, zero: 0, flags: 0, offset_high: 0 };

/// Present, 32-bit interrupt gate (interrupts stay off in the handler), callable from ring 0.
pub const KERNEL_GATE: u8 = 0x8E;
/// The same, but also callable by `int n` from user mode (ring 3): what system calls use.
pub const USER_GATE: u8 = 0xEE;

static mut IDT: [Gate; 256] = [MISSING; 256];

/// Points vector `vector` at `handler` with the given gate flags.
pub fn set_gate(vector: u8, handler: u32, flags: u8) {
    let gate = Gate {
        offset_low: handler as u16,
        selector: 0x08,
        zero: 0,
        flags,
        offset_high: (handler >> 16) as u16,
    };
    // SAFETY: one CPU, interrupts off: nobody else reads or writes the IDT right now.
    unsafe { (*(&raw mut IDT))[vector as usize] = gate };
}

/// The assembly stub that saves a `TrapFrame` for the system call vector 0x80.
pub fn syscall_stub() -> u32 {
    // SAFETY: a constant defined in the assembly above.
    unsafe { isr_stub_128 }
}

/// Installs the exception handlers and loads the IDT into the CPU (`lidt`).
pub fn init() {
    for (vector, &stub) in unsafe { isr_stubs }.iter().enumerate() {
        set_gate(vector as u8, stub, KERNEL_GATE);
    }
    #[repr(C, packed)]
    struct IdtPointer {
        limit: u16,
        base: u32,
    }
    let pointer = IdtPointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: &raw const IDT as u32,
    };
    // SAFETY: the IDT is a static and every present entry points at a valid stub.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error", "debug", "non-maskable interrupt", "breakpoint", "overflow",
    "bound range exceeded", "invalid opcode", "device not available", "double fault",
    "coprocessor segment overrun", "invalid TSS", "segment not present", "stack-segment fault",
    "general protection fault", "page fault", "reserved", "x87 floating-point error",
    "alignment check", "machine check", "SIMD floating-point error", "virtualization",
    "control protection", "reserved", "reserved", "reserved", "reserved", "reserved",
    "reserved", "hypervisor injection", "VMM communication", "security", "reserved",
];

/// Called by `isr_common` for every interrupt, with the registers saved on the stack.
#[unsafe(no_mangle)]
extern "C" fn interrupt_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        0x80 => crate::syscall::handle(frame),
        3 => crate::kprintln!("[int] breakpoint at eip={:#x}", frame.eip),
        vector @ 0..32 => panic!(
            "CPU exception {vector} ({}) at eip={:#x}, error code {:#x}",
            EXCEPTION_NAMES[vector as usize], frame.eip, frame.error_code
        ),
        vector => panic!("unexpected interrupt {vector}"),
    }
}
