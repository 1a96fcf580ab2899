/**
 * The seccomp filter of the `local` sandbox: a classic BPF program (the format `bwrap --seccomp FD`
 * reads: an array of `struct sock_filter`) that refuses the system calls an unprivileged build or
 * test never needs and that make up most of the kernel's attack surface from inside a sandbox:
 * new namespaces (clone/unshare with a CLONE_NEW* flag, setns), keyrings, ptrace and cross-process
 * memory access, eBPF, perf events, io_uring, mounting, kexec, kernel modules, reboot, swap.
 * Refused calls fail with EPERM (clone3, whose flags a filter cannot read, with ENOSYS so libc falls
 * back to clone, which is checked). A process of another architecture (x32, i386) is killed.
 *
 * Built by hand rather than through libseccomp: no Node binding of it is maintained, and the
 * program is a few dozen instructions.
 */

// struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6];
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
/** Low 32 bits of args[0] (little-endian: both supported architectures are). */
const OFFSET_ARG0_LOW = 16;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K = 0x06; // BPF_RET | BPF_K

const RET_ALLOW = 0x7fff0000;
const RET_KILL_PROCESS = 0x80000000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME */
export const NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

interface ArchTable {
  audit: number;
  /** x86_64: numbers at and above this are the x32 ABI, refused as a whole. */
  x32Base?: number;
  clone: number;
  clone3: number;
  unshare: number;
  /** Refused outright (EPERM). */
  blocked: Record<string, number>;
}

// Numbers from the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h).
const COMMON_NEW = {
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  mount_setattr: 442,
};

const TABLES: Record<string, ArchTable> = {
  x64: {
    audit: 0xc000003e, // AUDIT_ARCH_X86_64
    x32Base: 0x40000000,
    clone: 56,
    clone3: 435,
    unshare: 272,
    blocked: {
      ptrace: 101,
      syslog: 103,
      pivot_root: 155,
      acct: 163,
      mount: 165,
      umount2: 166,
      swapon: 167,
      swapoff: 168,
      reboot: 169,
      iopl: 172,
      ioperm: 173,
      init_module: 175,
      delete_module: 176,
      quotactl: 179,
      lookup_dcookie: 212,
      kexec_load: 246,
      add_key: 248,
      request_key: 249,
      keyctl: 250,
      perf_event_open: 298,
      name_to_handle_at: 303,
      open_by_handle_at: 304,
      setns: 308,
      process_vm_readv: 310,
      process_vm_writev: 311,
      finit_module: 313,
      kexec_file_load: 320,
      bpf: 321,
      userfaultfd: 323,
      ...COMMON_NEW,
    },
  },
  arm64: {
    audit: 0xc00000b7, // AUDIT_ARCH_AARCH64
    clone: 220,
    clone3: 435,
    unshare: 97,
    blocked: {
      lookup_dcookie: 18,
      umount2: 39,
      mount: 40,
      pivot_root: 41,
      quotactl: 60,
      acct: 89,
      kexec_load: 104,
      init_module: 105,
      delete_module: 106,
      syslog: 116,
      ptrace: 117,
      reboot: 142,
      add_key: 217,
      request_key: 218,
      keyctl: 219,
      swapon: 224,
      swapoff: 225,
      perf_event_open: 241,
      name_to_handle_at: 264,
      open_by_handle_at: 265,
      setns: 268,
      process_vm_readv: 270,
      process_vm_writev: 271,
      finit_module: 273,
      bpf: 280,
      userfaultfd: 282,
      kexec_file_load: 294,
      ...COMMON_NEW,
    },
  },
};

/** The system calls the filter refuses on this architecture (for documentation and tests). */
export function blockedSyscalls(arch: string = process.arch): string[] {
  const t = TABLES[arch];
  return t ? Object.keys(t.blocked) : [];
}

type Target = 'eperm' | 'enosys' | 'kill' | 'nsflags';
interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
  label?: Target;
}

/**
 * The filter for `arch` (Node's process.arch), as the bytes bwrap reads; null on an architecture
 * without a table here (the sandbox then runs without a filter, and says so).
 */
export function seccompProgram(arch: string = process.arch): Buffer | null {
  const t = TABLES[arch];
  if (!t) return null;
  const prog: Insn[] = [];
  prog.push({ code: LD_W_ABS, k: OFFSET_ARCH });
  prog.push({ code: JEQ_K, k: t.audit, jf: 'kill' });
  prog.push({ code: LD_W_ABS, k: OFFSET_NR });
  if (t.x32Base !== undefined) prog.push({ code: JGE_K, k: t.x32Base, jt: 'kill' });
  for (const nr of Object.values(t.blocked)) prog.push({ code: JEQ_K, k: nr, jt: 'eperm' });
  prog.push({ code: JEQ_K, k: t.clone3, jt: 'enosys' });
  prog.push({ code: JEQ_K, k: t.clone, jt: 'nsflags' });
  prog.push({ code: JEQ_K, k: t.unshare, jt: 'nsflags' });
  prog.push({ code: RET_K, k: RET_ALLOW });
  // clone / unshare: refused when the flags ask for any new namespace.
  prog.push({ code: LD_W_ABS, k: OFFSET_ARG0_LOW, label: 'nsflags' });
  prog.push({ code: JSET_K, k: NAMESPACE_FLAGS, jt: 'eperm' });
  prog.push({ code: RET_K, k: RET_ALLOW });
  prog.push({ code: RET_K, k: RET_ERRNO | EPERM, label: 'eperm' });
  prog.push({ code: RET_K, k: RET_ERRNO | ENOSYS, label: 'enosys' });
  prog.push({ code: RET_K, k: RET_KILL_PROCESS, label: 'kill' });

  const at = new Map<Target, number>();
  prog.forEach((insn, i) => insn.label && at.set(insn.label, i));
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    // Jump offsets count from the next instruction and only go forward (at most 255).
    const offset = (target: Target | undefined) => {
      if (!target) return 0;
      const d = at.get(target)! - i - 1;
      if (d < 0 || d > 255) throw new Error(`seccomp jump to ${target} out of range (${d})`);
      return d;
    };
    buf.writeUInt16LE(insn.code, i * 8);
    buf.writeUInt8(offset(insn.jt), i * 8 + 2);
    buf.writeUInt8(offset(insn.jf), i * 8 + 3);
    buf.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return buf;
}
