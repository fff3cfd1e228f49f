// write(2) without the C library: arguments in registers, then the `syscall`
// instruction. x86-64 Linux only.
use std::arch::asm;

const SYS_WRITE: isize = 1; // system call number of write on x86-64

fn raw_write(fd: usize, buf: &[u8]) -> isize {
    let ret: isize;
    // SAFETY: write only reads `buf.len()` bytes from `buf`, which we borrow.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_WRITE => ret, // in: number, out: result or -errno
            in("rdi") fd,                      // 1st argument
            in("rsi") buf.as_ptr(),            // 2nd argument
            in("rdx") buf.len(),               // 3rd argument
            lateout("rcx") _,                  // syscall overwrites rcx (return address)
            lateout("r11") _,                  // ... and r11 (saved flags)
            options(nostack),
        );
    }
    ret
}

fn main() {
    let n = raw_write(1, b"hello from the syscall instruction\n");
    println!("write returned {n}");
    let err = raw_write(99, b"nobody is listening\n");
    println!("write to fd 99 returned {err}, that is -EBADF");
}
