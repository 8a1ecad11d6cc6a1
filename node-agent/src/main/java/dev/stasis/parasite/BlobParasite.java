package dev.stasis.parasite;

import dev.stasis.compel.RemoteMapping;
import dev.stasis.compel.TaskControl;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Status;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * The parasite blob (classpath resource parasite.bin, built from src/main/c/parasite) injected into
 * a seized process. One shared mapping holds {@code [blob | area]}: the blob at the start (page
 * aligned), then the area with the command header, the answer and the stack at its end. Commands
 * run in trap mode through {@link TaskControl#runTrap}; {@link #close()} unmaps the region from the
 * target and the agent.
 */
public final class BlobParasite implements Parasite {
  private static final long PAGE = 4096;

  /** A command is a few dozen system calls; anything slower is stuck. */
  private static final long COMMAND_TIMEOUT_MS = 5_000;

  private static final byte[] BLOB = loadBlob();

  private final TaskControl control;
  private final RemoteMapping mapping;
  private final long entry;
  private final long area;
  private final ByteBuffer localArea;
  private boolean closed;

  private BlobParasite(TaskControl control, RemoteMapping mapping, long blobSize) {
    this.control = control;
    this.mapping = mapping;
    this.entry = mapping.remoteAddress();
    this.area = mapping.remoteAddress() + blobSize;
    this.localArea =
        mapping
            .local()
            .slice((int) blobSize, ParasiteAbi.AREA_SIZE)
            .order(java.nio.ByteOrder.LITTLE_ENDIAN);
  }

  private static byte[] loadBlob() {
    try (InputStream in = BlobParasite.class.getResourceAsStream("parasite.bin")) {
      if (in == null) {
        throw new IllegalStateException(
            "parasite.bin is not on the classpath (the node-agent build makes it)");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Maps the blob and the area into the process behind {@code control}; cleans up before it throws.
   */
  public static Parasite infect(TaskControl control) throws IOException {
    long blobSize = (BLOB.length + PAGE - 1) / PAGE * PAGE;
    RemoteMapping m =
        control.mapShared(
            blobSize + ParasiteAbi.AREA_SIZE, Linux.PROT_READ | Linux.PROT_WRITE | Linux.PROT_EXEC);
    try {
      m.local().put(0, BLOB);
      return new BlobParasite(control, m, blobSize);
    } catch (RuntimeException e) {
      try {
        m.close();
      } catch (IOException c) {
        e.addSuppressed(c);
      }
      throw e;
    }
  }

  /** Runs {@code cmd} in thread {@code tid}; returns the area holding the answer. */
  private synchronized ByteBuffer run(ParasiteCommand cmd, int tid) throws IOException {
    if (closed) {
      throw new IllegalStateException("parasite of pid " + control.pid() + " is already cured");
    }
    cmd.encode(localArea);
    control.runTrap(tid, entry, area + ParasiteAbi.AREA_SIZE, area, COMMAND_TIMEOUT_MS);
    int status = localArea.getInt(ParasiteAbi.HDR_STATUS);
    String where = "parasite " + cmd + " in tid " + tid + " of pid " + control.pid();
    if (status == ParasiteAbi.STATUS_PENDING) {
      throw new IOException(where + ": the blob did not run the command (corrupt area)");
    }
    if (status == ParasiteAbi.STATUS_BAD_COMMAND) {
      throw new IOException(where + ": the blob does not know command " + cmd.code());
    }
    if (status != 0) {
      int errno = -status;
      throw new IOException(
          where
              + ": "
              + cmd.stepName(localArea.getInt(ParasiteAbi.HDR_STEP))
              + " failed: "
              + Errno.name(errno)
              + " ("
              + Linux.strerror(errno)
              + ")");
    }
    return localArea;
  }

  @Override
  public ThreadInfo dumpThread(int tid) throws IOException {
    ThreadInfo info = ParasiteCommand.decodeThread(run(ParasiteCommand.DUMP_THREAD, tid));
    // gettid() in the target answers in the target's own PID namespace: the last NSpid value.
    int[] nsPid = Status.readThread(control.pid(), tid).nsPid();
    int expected = nsPid.length == 0 ? tid : nsPid[nsPid.length - 1];
    if (info.tid() != expected) {
      throw new IOException(
          "parasite DUMP_THREAD for tid " + tid + " ran in tid " + info.tid() + " instead");
    }
    return info;
  }

  @Override
  public MiscInfo dumpMisc() throws IOException {
    return ParasiteCommand.decodeMisc(run(ParasiteCommand.DUMP_MISC, leader()));
  }

  @Override
  public List<Sigaction> dumpSigacts() throws IOException {
    return ParasiteCommand.decodeSigacts(run(ParasiteCommand.DUMP_SIGACTS, leader()));
  }

  @Override
  public List<Itimer> dumpItimers() throws IOException {
    return ParasiteCommand.decodeItimers(run(ParasiteCommand.DUMP_ITIMERS, leader()));
  }

  private int leader() throws IOException {
    return control.tids().get(0);
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
