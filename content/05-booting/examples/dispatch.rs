// A system-call dispatcher in miniature, as a normal program: the "kernel" gets
// the user's registers, picks a handler by number and checks every argument.
const SYS_WRITE: u64 = 1;
const SYS_GETPID: u64 = 39;
const EBADF: i64 = 9;
const EFAULT: i64 = 14;
const ENOSYS: i64 = 38;

/// The registers the syscall entry code saved (x86-64 Linux convention).
struct Regs { rax: u64, rdi: u64, rsi: u64, rdx: u64 }

struct Kernel { pid: u64, console: Vec<u8> }

impl Kernel {
    fn syscall(&mut self, r: &Regs, user_memory: &[u8]) -> i64 {
        match r.rax {
            SYS_WRITE => self.sys_write(r.rdi, r.rsi, r.rdx, user_memory),
            SYS_GETPID => self.pid as i64,
            _ => -ENOSYS,
        }
    }

    fn sys_write(&mut self, fd: u64, addr: u64, len: u64, user_memory: &[u8]) -> i64 {
        if fd != 1 {
            return -EBADF;
        }
        // Never trust a pointer from user space: the whole range must be the user's.
        let range = addr.checked_add(len).map(|end| addr as usize..end as usize);
        match range.and_then(|r| user_memory.get(r)) {
            Some(bytes) => {
                self.console.extend_from_slice(bytes);
                len as i64
            }
            None => -EFAULT,
        }
    }
}

fn main() {
    let user_memory = b"....hello, kernel!\n....";
    let mut kernel = Kernel { pid: 1, console: Vec::new() };
    let calls = [
        ("write(1, 4, 15)", Regs { rax: SYS_WRITE, rdi: 1, rsi: 4, rdx: 15 }),
        ("write(1, 4, 4096)", Regs { rax: SYS_WRITE, rdi: 1, rsi: 4, rdx: 4096 }),
        ("write(7, 4, 15)", Regs { rax: SYS_WRITE, rdi: 7, rsi: 4, rdx: 15 }),
        ("getpid()", Regs { rax: SYS_GETPID, rdi: 0, rsi: 0, rdx: 0 }),
        ("syscall 999", Regs { rax: 999, rdi: 0, rsi: 0, rdx: 0 }),
    ];
    for (name, regs) in &calls {
        println!("{name:<18} -> {}", kernel.syscall(regs, user_memory));
    }
    print!("console: {}", String::from_utf8_lossy(&kernel.console));
}
