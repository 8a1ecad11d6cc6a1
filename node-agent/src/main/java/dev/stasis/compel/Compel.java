package dev.stasis.compel;

import dev.stasis.compel.arch.Arch;
import java.io.IOException;

/** Entry point of the compel layer: seizing process trees. Knows nothing about dumping. */
public final class Compel {
  private Compel() {}

  /**
   * Seizes {@code pid}, all its threads and (with {@code withDescendants}) all its descendants,
   * repeating PTRACE_SEIZE + PTRACE_INTERRUPT until the set of threads is stable.
   *
   * @throws SeizeException with a one-line reason when the target must not or cannot be seized (no
   *     such process, kernel thread, zombie, the agent itself or one of its ancestors, PID 1)
   */
  public static SeizedTree seize(int pid, boolean withDescendants) throws IOException {
    Tracer tracer = new Tracer();
    try {
      return tracer.call(() -> new Seizer(tracer, Arch.current()).seizeTree(pid, withDescendants));
    } catch (IOException | RuntimeException e) {
      tracer.close();
      throw e;
    }
  }
}
