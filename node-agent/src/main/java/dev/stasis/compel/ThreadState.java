package dev.stasis.compel;

/**
 * A seized thread's state, captured right after it stopped and before anything was changed. These
 * are the values a restore must put back, and the values {@code close()} of the seized tree
 * restores on detach.
 *
 * @param tid the thread's id (host PID namespace)
 * @param gpRegs the raw general-purpose register block as PTRACE_GETREGSET(NT_PRSTATUS) returns it
 *     (x86-64: {@code struct user_regs_struct}, 27 × u64); decode with {@link
 *     dev.stasis.compel.arch.Arch}
 * @param xsave the raw PTRACE_GETREGSET(NT_X86_XSTATE) block (legacy FXSAVE area, xsave header and
 *     extended components) exactly as the kernel returned it
 * @param sigmask the blocked-signal mask (PTRACE_GETSIGMASK), bit {@code n-1} for signal {@code n}
 * @param rseq the thread's rseq registration (PTRACE_GET_RSEQ_CONFIGURATION), or null if none
 */
public record ThreadState(int tid, byte[] gpRegs, byte[] xsave, long sigmask, Rseq rseq) {

  /** A registered rseq area: {@code rseq_abi_pointer}, size, flags and signature. */
  public record Rseq(long abiPointer, int abiSize, int flags, int signature) {}
}
