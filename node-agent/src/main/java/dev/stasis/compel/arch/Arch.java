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
   * Instruction bytes that perform one system call and then trap to the tracer, padded to a
   * multiple of 8 so they can be poked word by word.
   */
  byte[] syscallTrap();

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
