/**
 * The seccomp filter every sandbox runs under, generated here as classic BPF (x86_64) and handed to
 * bwrap with `--seccomp FD`. Plain data, no libseccomp.
 *
 * The namespaces and the unprivileged user already keep a program away from the host; the filter
 * removes kernel surface a teaching program never needs (ptrace, mounts, keyrings, bpf, perf,
 * new namespaces, module loading, io_uring) and every socket family except AF_UNIX. socketpair
 * stays allowed: rustc's linker start needs it, and it can only create AF_UNIX pairs anyway.
 */

/** x86_64 syscall numbers a sandboxed program may not use: they fail with EPERM. */
const BLOCKED_SYSCALLS: Record<string, number> = {
  ptrace: 101,
  syslog: 103,
  personality: 135, // would allow READ_IMPLIES_EXEC or disabling ASLR
  vhangup: 153,
  pivot_root: 155,
  adjtimex: 159,
  chroot: 161,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  sethostname: 170,
  setdomainname: 171,
  iopl: 172,
  ioperm: 173,
  init_module: 175,
  delete_module: 176,
  quotactl: 179,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  move_pages: 279,
  perf_event_open: 298,
  fanotify_init: 300,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  clock_adjtime: 305,
  setns: 308,
  process_vm_readv: 310,
  process_vm_writev: 311,
  kcmp: 312,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  pidfd_getfd: 438,
  mount_setattr: 442,
};

const NR = { socket: 41, clone: 56, clone3: 435 };
const AF_UNIX = 1;
/** clone() flags that create namespaces; threads and fork() never set them. */
const CLONE_NAMESPACE_FLAGS =
  0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000; /* NEWNET */

const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;
const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;

// struct seccomp_data offsets
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG0_LOW = 16;

// BPF opcodes
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;

interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const load = (offset: number): Instruction => ({ code: BPF_LD_W_ABS, jt: 0, jf: 0, k: offset });
const ret = (value: number): Instruction => ({ code: BPF_RET_K, jt: 0, jf: 0, k: value >>> 0 });
const errno = (code: number): Instruction => ret(SECCOMP_RET_ERRNO | code);
const jumpIfEqual = (k: number, jt: number, jf: number): Instruction => ({ code: BPF_JMP_JEQ_K, jt, jf, k: k >>> 0 });

/** The filter program as instructions. */
export function seccompProgram(): Instruction[] {
  const p: Instruction[] = [];
  // Only native x86_64 syscalls: 32-bit entry points (int 0x80) have other numbers; kill those.
  p.push(load(OFFSET_ARCH), jumpIfEqual(AUDIT_ARCH_X86_64, 1, 0), ret(SECCOMP_RET_KILL_PROCESS));
  p.push(load(OFFSET_NR));
  // x32 ABI numbers alias the native ones with a high bit: refuse them all.
  p.push({ code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: X32_SYSCALL_BIT }, errno(ENOSYS));
  for (const nr of Object.values(BLOCKED_SYSCALLS)) {
    p.push(jumpIfEqual(nr, 0, 1), errno(EPERM));
  }
  // clone3 passes its flags in memory the filter cannot read: ENOSYS makes glibc fall back to clone.
  p.push(jumpIfEqual(NR.clone3, 0, 1), errno(ENOSYS));
  // clone: allowed unless it asks for a namespace.
  p.push(
    jumpIfEqual(NR.clone, 0, 3),
    load(OFFSET_ARG0_LOW),
    { code: BPF_JMP_JSET_K, jt: 0, jf: 1, k: CLONE_NAMESPACE_FLAGS },
    errno(EPERM),
  );
  p.push(load(OFFSET_NR)); // reload: the clone branch may have replaced the accumulator
  // socket: only AF_UNIX.
  p.push(jumpIfEqual(NR.socket, 0, 3), load(OFFSET_ARG0_LOW), jumpIfEqual(AF_UNIX, 1, 0), errno(EAFNOSUPPORT));
  p.push(ret(SECCOMP_RET_ALLOW));
  return p;
}

/** The filter as bwrap reads it from its --seccomp fd: an array of struct sock_filter. */
export function seccompFilterBytes(): Buffer {
  const program = seccompProgram();
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((ins, i) => {
    bytes.writeUInt16LE(ins.code, i * 8);
    bytes.writeUInt8(ins.jt, i * 8 + 2);
    bytes.writeUInt8(ins.jf, i * 8 + 3);
    bytes.writeUInt32LE(ins.k, i * 8 + 4);
  });
  return bytes;
}

export const blockedSyscallNames = Object.keys(BLOCKED_SYSCALLS);

/**
 * The same filter as a Docker seccomp profile (the JSON `docker run --security-opt seccomp=…`
 * reads), for the docker driver: the same blocked calls with the same errors, sockets other than
 * AF_UNIX refused, clone3 ENOSYS, clone with a namespace flag EPERM (one rule per flag: libseccomp
 * can only test that masked bits are equal to a value). Only native x86_64 calls are allowed.
 */
export function dockerSeccompProfile(): string {
  const namespaceFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
  return JSON.stringify({
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: ["SCMP_ARCH_X86_64"],
    syscalls: [
      { names: Object.keys(BLOCKED_SYSCALLS), action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
      { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
      { names: ["socket"], action: "SCMP_ACT_ERRNO", errnoRet: EAFNOSUPPORT, args: [{ index: 0, value: AF_UNIX, op: "SCMP_CMP_NE" }] },
      ...namespaceFlags.map((flag) => ({
        names: ["clone"],
        action: "SCMP_ACT_ERRNO",
        errnoRet: EPERM,
        args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
      })),
    ],
  });
}
