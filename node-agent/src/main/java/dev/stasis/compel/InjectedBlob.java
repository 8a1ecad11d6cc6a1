package dev.stasis.compel;

import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A {@link ParasiteBlob} mapped into one seized process: one shared memfd mapping holding {@code
 * [blob, page aligned | args area]}. {@link #run} executes the blob's entry point (continued until
 * it reports done, then interrupted in its park loop) with the args area's address as argument and
 * the stack at the area's end. {@link #close()} (the cure) unmaps it from the target and the agent
 * and never throws.
 */
public final class InjectedBlob implements AutoCloseable {
  private static final long PAGE = 4096;

  private final TaskControl control;
  private final RemoteMapping mapping;
  private final long entry;
  private final long area;
  private final int areaSize;
  private final ByteBuffer localArea;
  private boolean closed;

  private InjectedBlob(TaskControl control, RemoteMapping mapping, ParasiteBlob blob, long off) {
    this.control = control;
    this.mapping = mapping;
    this.entry = mapping.remoteAddress() + blob.entryOffset();
    this.area = mapping.remoteAddress() + off;
    this.areaSize = blob.argsAreaSize();
    this.localArea =
        mapping.local().slice((int) off, blob.argsAreaSize()).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Maps {@code blob} and its args area into the target; cleans up before it throws. */
  static InjectedBlob inject(TaskControl control, ParasiteBlob blob) throws IOException {
    long blobSize = (blob.code().length + PAGE - 1) / PAGE * PAGE;
    RemoteMapping m =
        control.mapShared(
            blobSize + blob.argsAreaSize(), Linux.PROT_READ | Linux.PROT_WRITE | Linux.PROT_EXEC);
    try {
      m.local().put(0, blob.code());
      return new InjectedBlob(control, m, blob, blobSize);
    } catch (RuntimeException e) {
      try {
        m.close();
      } catch (IOException c) {
        e.addSuppressed(c);
      }
      throw e;
    }
  }

  public int pid() {
    return control.pid();
  }

  /** Live seized thread ids, the leader first. */
  public List<Integer> tids() throws IOException {
    return control.tids();
  }

  /** The agent's little-endian view of the args area (valid until close). */
  public ByteBuffer argsArea() {
    return localArea;
  }

  /**
   * Runs the blob in thread {@code tid} until {@code finished} (a word the blob writes last in
   * {@link #argsArea()}) says it is done, then stops it in its park ({@link TaskControl#runTrap});
   * its answer is in {@link #argsArea()}.
   */
  public synchronized void run(int tid, java.util.function.BooleanSupplier finished, long timeoutMs)
      throws IOException {
    if (closed) {
      throw new IllegalStateException("blob in pid " + control.pid() + " is already unmapped");
    }
    control.runTrap(tid, entry, area + areaSize, area, finished, timeoutMs);
  }

  /** The cure: unmaps blob and area from the target and the agent. Never throws. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      mapping.close();
    } catch (IOException | RuntimeException e) {
      System.err.println("stasis: curing pid " + control.pid() + ": " + e.getMessage());
    }
  }
}
