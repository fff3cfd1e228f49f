//! Leaving QEMU: the `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
//! Writing a value v to port 0xf4 ends QEMU with exit status (v << 1) | 1.

use crate::x86::{halt_forever, outl};

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum ExitCode {
    /// QEMU exits with status (0x10 << 1) | 1 = 33.
    Success = 0x10,
    /// QEMU exits with status (0x11 << 1) | 1 = 35.
    Failure = 0x11,
}

pub fn exit(code: ExitCode) -> ! {
    outl(ISA_DEBUG_EXIT_PORT, code as u32);
    // Only reached without the device: stop here, the runner's wall limit ends QEMU.
    halt_forever()
}
