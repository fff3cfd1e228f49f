//! Lesson: the boot message.
//!
//! `kernel_main` (main.rs) calls `hello` right after the serial port is set up: these are the
//! kernel's first words. `kprintln!` writes straight to the serial port (serial.rs); QEMU's
//! `-serial stdio` turns that into the console you see.

use crate::kprintln;

pub fn hello() {
    kprintln!("Hello from the OSByExample kernel!");
}
