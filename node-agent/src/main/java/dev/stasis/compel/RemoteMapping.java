package dev.stasis.compel;

import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Memory shared between the agent and a seized target (a memfd mapped on both sides). {@link
 * #close()} unmaps it from the target and from the agent; closing the seized tree closes any
 * mapping still open, so no injected memory outlives the seize.
 */
public final class RemoteMapping implements AutoCloseable {
  private final TaskControl control;
  private final long remote;
  private final long local;
  private final long size;
  private boolean closed;

  RemoteMapping(TaskControl control, long remote, long local, long size) {
    this.control = control;
    this.remote = remote;
    this.local = local;
    this.size = size;
  }

  /** The address of the mapping in the target. */
  public long remoteAddress() {
    return remote;
  }

  public long size() {
    return size;
  }

  /** A little-endian view of the agent's side of the mapping (valid until close). */
  public ByteBuffer local() {
    return Linux.wrap(local, (int) size);
  }

  /** Unmaps the target's side, then the agent's; the agent's side goes even if the first fails. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      control.unmapRemote(this);
    } finally {
      Linux.munmap(local, size);
    }
  }
}
