//! The OSByExample teaching kernel.
//!
//! QEMU loads this ELF with `-kernel` (multiboot), `boot.rs` sets up a stack and jumps to
//! `kernel_main` below, which walks through the lessons one after the other:
//!
//! | lesson          | file              | what it shows                                  |
//! |-----------------|-------------------|------------------------------------------------|
//! | boot message    | `src/hello.rs`    | the kernel's first words on the serial console |
//! | system call     | `src/syscall.rs`  | `int 0x80`: from a task into the kernel        |
//! | scheduler       | `src/scheduler.rs`| cooperative round robin, own stack per task    |
//! | the tasks       | `src/tasks.rs`    | the programs the scheduler runs                |
//!
//! Everything else (serial port, interrupts, heap, exit) is plumbing the lessons stand on.

#![no_std]
#![no_main]

extern crate alloc;

mod boot;
mod heap;
mod interrupts;
mod qemu;
mod serial;
mod x86;

mod hello;
mod scheduler;
mod syscall;
mod tasks;

use core::panic::PanicInfo;

/// What a multiboot loader puts in `eax` before jumping to us.
const MULTIBOOT_BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Called by `_start` in boot.rs with the two values the boot loader handed over in eax and ebx.
#[unsafe(no_mangle)]
pub extern "C" fn kernel_main(multiboot_magic: u32, _multiboot_info: u32) -> ! {
    serial::init();
    if multiboot_magic != MULTIBOOT_BOOTLOADER_MAGIC {
        panic!("not started by a multiboot loader (eax = {multiboot_magic:#x})");
    }

    hello::hello();

    interrupts::init();
    syscall::init();

    tasks::spawn_all();
    scheduler::run();

    kprintln!("[kernel] all tasks finished, shutting down");
    qemu::exit(qemu::ExitCode::Success)
}

/// A panic anywhere in the kernel: say why on the serial console, then stop QEMU with the
/// failure code so the runner reports a failed run instead of waiting for its wall limit.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    kprintln!("KERNEL PANIC: {info}");
    qemu::exit(qemu::ExitCode::Failure)
}
