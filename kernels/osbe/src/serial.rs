//! The console: the first serial port (COM1, a 16550 UART at I/O port 0x3F8).
//! QEMU's `-serial stdio` connects it to QEMU's standard output, which the runner streams.

use crate::x86::{inb, outb};
use core::fmt;

const COM1: u16 = 0x3F8;

/// Programs the UART: 115200 baud, 8 data bits, no parity, one stop bit, no interrupts.
pub fn init() {
    outb(COM1 + 1, 0x00); // interrupt enable register: none, we poll
    outb(COM1 + 3, 0x80); // line control: DLAB on, the next two ports set the baud divisor
    outb(COM1, 0x01); //     divisor low byte: 115200 / 1
    outb(COM1 + 1, 0x00); // divisor high byte
    outb(COM1 + 3, 0x03); // line control: DLAB off, 8N1
    outb(COM1 + 2, 0xC7); // FIFO control: enable and clear the FIFOs
}

/// Sends one byte once the transmitter holding register is empty (line status bit 5).
pub fn write_byte(byte: u8) {
    while inb(COM1 + 5) & 0x20 == 0 {}
    outb(COM1, byte);
}

pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        write_byte(b);
    }
}

/// Lets `write!` and the `kprintln!` macro format straight onto the serial port.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// The kernel's own `print!`: formats onto the serial console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::Serial, $($arg)*);
    }};
}

/// The kernel's own `println!`.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {{
        $crate::kprint!($($arg)*);
        $crate::kprint!("\n");
    }};
}
