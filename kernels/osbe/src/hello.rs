//! Lesson: the boot message.
//!
//! `kernel_main` (main.rs) calls `hello` right after the serial port is set up: these are the
//! kernel's first words. `kprintln!` writes straight to the serial port (serial.rs); QEMU's
//! `-serial stdio` turns that into the console you see.
//!
//! Nothing else is set up yet: no IDT, so a CPU exception here (a division by zero, `int3`)
//! has nowhere to go, the CPU gives up and resets the machine - a triple fault.

use crate::kprintln;

pub fn hello() {
    kprintln!("Hello from the OSByExample kernel!");
}
