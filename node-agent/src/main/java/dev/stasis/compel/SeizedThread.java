package dev.stasis.compel;

/** Book-keeping of one seized thread; touched only on the tracer thread. */
final class SeizedThread {
  final int tid;

  /** What release puts back: captured at seize (or, in a leftover sweep, from the journal). */
  ThreadState state;

  /** Injected code ran in it: its extended (FPU/vector) state must be put back too. */
  boolean dirty;

  /** It exited or was killed while seized; nothing to restore or detach. */
  boolean gone;

  /** Its NSpid line as the seize read it (null in a leftover sweep's tasks). */
  int[] nsPid;

  SeizedThread(int tid, ThreadState state) {
    this.tid = tid;
    this.state = state;
  }
}
