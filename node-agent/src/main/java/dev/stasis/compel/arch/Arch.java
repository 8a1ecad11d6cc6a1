package dev.stasis.compel.arch;

/**
 * What compel needs to know about the CPU architecture: the register block layout, how to point a
 * stopped thread at code (a system call or the parasite entry), and the extended-state regset.
 * Register blocks are the raw bytes PTRACE_GETREGSET(NT_PRSTATUS) returned; methods that change
 * them work on a copy the caller owns.
 */
public interface Arch {

  /** The architecture of this JVM. */
  static Arch current() {
    String a = System.getProperty("os.arch");
    if (a.equals("amd64") || a.equals("x86_64")) {
      return X86_64.INSTANCE;
    }
    throw new UnsupportedOperationException("unsupported architecture " + a);
  }

  /** Size of the general-purpose register block (NT_PRSTATUS). */
  int gpRegsSize();

  /** The regset note type of the extended (FPU/vector) state. */
  int extRegset();

  /** An upper bound for the first GETREGSET of the extended state; grown if the kernel fills it. */
  int extRegsInitialSize();

  /**
   * Instruction bytes that perform one system call and then park: loop forever on {@code pause()}
   * (signals are blocked meanwhile). The tracer takes the result at the call's syscall-exit stop
   * and never lets the thread reach the loop; if the tracer dies first, the thread parks there
   * instead of running anything else (no trap instruction that would kill it untraced). Padded to a
   * multiple of 8 so they can be poked word by word.
   */
  byte[] syscallPark();

  /** Offset, in {@link #syscallPark()}, just after the system call the stub is for. */
  int syscallEnd();

  /** The number of the system call the park loop sleeps in ({@code pause}). */
  long parkSyscall();

  /** Length of the syscall instruction (the ip at a syscall stop is just past it). */
  int syscallInsnLength();

  /** The syscall number a thread is in at a syscall stop ({@code orig_rax} on x86-64). */
  long syscallNr(byte[] gpRegs);

  /**
   * Whether the thread runs in the native 64-bit mode (compat tasks are refused).
   *
   * @param gpRegs the thread's register block
   */
  boolean isNative(byte[] gpRegs);

  long ip(byte[] gpRegs);

  /**
   * Prepares {@code gpRegs} to execute a system call at {@code ip}: number and up to six arguments
   * in the syscall registers, no syscall restart pending, known flags.
   */
  void setupSyscall(byte[] gpRegs, long ip, long nr, long... args);

  /** The system call's return value after the trap. */
  long syscallResult(byte[] gpRegs);

  /**
   * Prepares {@code gpRegs} to run code at {@code ip} on stack {@code sp} (16-byte aligned) with
   * {@code arg} as the first argument register, no syscall restart pending, known flags.
   */
  void setupCall(byte[] gpRegs, long ip, long sp, long arg);
}
