//! Lesson: a system call.
//!
//! A task cannot call into the kernel like an ordinary function: it puts a call number and
//! arguments into registers and executes `int 0x80`. The CPU looks up vector 0x80 in the IDT,
//! jumps to the kernel's stub (interrupts.rs), which saves the registers in a `TrapFrame` and
//! calls `handle` below. The result goes back in `eax` - the same convention 32-bit Linux uses.
//!
//! Kept by any replacement of this file: `init`, `handle`, `write`, `yield_now`, `sys_println!`.

use crate::interrupts::{self, TrapFrame};
use core::arch::asm;
use core::fmt;

pub const SYSCALL_VECTOR: u8 = 0x80;

/// Call numbers, passed in eax.
pub const SYS_WRITE: u32 = 1; // ebx = pointer to bytes, ecx = length; returns the length
pub const SYS_YIELD: u32 = 2; // let the next task run; returns 0

/// Returned in eax for a call number the kernel does not know.
pub const ENOSYS: u32 = u32::MAX;

/// Installs the system call gate in the IDT.
pub fn init() {
    interrupts::set_gate(SYSCALL_VECTOR, interrupts::syscall_stub(), interrupts::USER_GATE);
    crate::kprintln!("[syscall] int 0x80 is ready");
}

// ---- kernel side: runs inside the interrupt ----

pub fn handle(frame: &mut TrapFrame) {
    frame.eax = match frame.eax {
        SYS_WRITE => {
            // A real kernel must check that the caller may read this memory: here every task
            // runs in ring 0 and sees all memory, so we trust the pointer.
            let bytes = unsafe { core::slice::from_raw_parts(frame.ebx as *const u8, frame.ecx as usize) };
            crate::serial::write_bytes(bytes);
            frame.ecx
        }
        SYS_YIELD => {
            // Switches to the scheduler on this task's stack; we come back here when it is
            // this task's turn again, and return from the interrupt as if nothing happened.
            crate::scheduler::yield_now();
            0
        }
        _ => ENOSYS,
    };
}

// ---- task side: what a C library would wrap ----

/// Writes bytes to the console through the kernel.
pub fn write(bytes: &[u8]) -> u32 {
    let result: u32;
    // SAFETY: int 0x80 only reads the bytes we pass and returns in eax.
    unsafe {
        asm!("int 0x80",
             inlateout("eax") SYS_WRITE => result,
             in("ebx") bytes.as_ptr(),
             in("ecx") bytes.len());
    }
    result
}

/// Gives the CPU to the next task.
pub fn yield_now() {
    // SAFETY: the kernel saves and restores every register around the switch.
    unsafe { asm!("int 0x80", inlateout("eax") SYS_YIELD => _) };
}

/// Formats a line into a buffer on the task's stack, then writes it with one system call.
pub fn print_line(args: fmt::Arguments) {
    struct Line {
        buffer: [u8; 128],
        len: usize,
    }
    impl fmt::Write for Line {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &b in s.as_bytes() {
                if self.len < self.buffer.len() - 1 {
                    self.buffer[self.len] = b;
                    self.len += 1;
                }
            }
            Ok(())
        }
    }
    let mut line = Line { buffer: [0; 128], len: 0 };
    let _ = fmt::Write::write_fmt(&mut line, args);
    line.buffer[line.len] = b'\n';
    write(&line.buffer[..=line.len]);
}

/// `println!` for tasks: one `SYS_WRITE` per line.
#[macro_export]
macro_rules! sys_println {
    ($($arg:tt)*) => { $crate::syscall::print_line(format_args!($($arg)*)) };
}
