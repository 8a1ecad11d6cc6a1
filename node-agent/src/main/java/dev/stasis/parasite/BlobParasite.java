package dev.stasis.parasite;

import dev.stasis.compel.InjectedBlob;
import dev.stasis.compel.ParasiteBlob;
import dev.stasis.compel.SeizedTask;
import dev.stasis.linux.Errno;
import dev.stasis.linux.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;

/**
 * The parasite blob (classpath resource parasite.bin, built from src/main/c/parasite) injected into
 * a seized process through compel, which is given it as a {@link ParasiteBlob}: entry at offset 0,
 * followed by the area with the command header, the answer and the stack at its end ({@link
 * ParasiteAbi}). Commands run through {@link InjectedBlob#run}, done when the blob has stored the
 * status word; {@link #close()} unmaps the region from the target and the agent.
 */
public final class BlobParasite implements Parasite {
  /** A command is a few dozen system calls; anything slower is stuck. */
  private static final long COMMAND_TIMEOUT_MS = 5_000;

  /** The blob as compel takes it: entry point at its start, the area of {@link ParasiteAbi}. */
  static final ParasiteBlob BLOB = new ParasiteBlob(loadBlob(), 0, ParasiteAbi.AREA_SIZE);

  /** A volatile view of the area's status word, which the blob writes from the target. */
  private static final java.lang.invoke.VarHandle STATUS =
      java.lang.invoke.MethodHandles.byteBufferViewVarHandle(
          int[].class, java.nio.ByteOrder.LITTLE_ENDIAN);

  private final SeizedTask task;
  private final InjectedBlob blob;
  private final ByteBuffer localArea;

  private BlobParasite(SeizedTask task, InjectedBlob blob) {
    this.task = task;
    this.blob = blob;
    this.localArea = blob.argsArea();
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
   * Injects the parasite into {@code task}. The returned handle's {@code close()} cures: it unmaps
   * the blob and the shared area; registers and signal masks are restored after every command. A
   * failed infection cleans up before it throws.
   */
  public static Parasite infect(SeizedTask task) throws IOException {
    return new BlobParasite(task, task.inject(BLOB));
  }

  /** Runs {@code cmd} in thread {@code tid}; returns the area holding the answer. */
  private synchronized ByteBuffer run(ParasiteCommand cmd, int tid) throws IOException {
    cmd.encode(localArea);
    // the blob stores the status last (a release store), after the whole answer
    blob.run(
        tid,
        () ->
            (int) STATUS.getVolatile(localArea, ParasiteAbi.HDR_STATUS)
                != ParasiteAbi.STATUS_PENDING,
        COMMAND_TIMEOUT_MS);
    int status = localArea.getInt(ParasiteAbi.HDR_STATUS);
    String where = "parasite " + cmd + " in tid " + tid + " of pid " + blob.pid();
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
    ThreadInfo info =
        ParasiteCommand.decodeThread(
            run(ParasiteCommand.DUMP_THREAD, tid), ParasiteAbi.ANSWER_OFFSET);
    checkRanIn(tid, info);
    return info;
  }

  @Override
  public ProcessInfo dumpProcess() throws IOException {
    int leader = leader();
    ProcessInfo info = ParasiteCommand.decodeProcess(run(ParasiteCommand.DUMP_PROCESS, leader));
    checkRanIn(leader, info.leader());
    return info;
  }

  /** The thread answer came from {@code tid}: gettid() in the target names the thread it ran in. */
  private void checkRanIn(int tid, ThreadInfo info) throws IOException {
    // gettid() in the target answers in the target's own PID namespace: the last NSpid value.
    int[] nsPid = task.nsPid(tid); // read at the seize: a /proc read each was frozen time
    int expected = nsPid.length == 0 ? tid : nsPid[nsPid.length - 1];
    if (info.tid() != expected) {
      throw new IOException("parasite thread answer for tid " + tid + " ran in tid " + info.tid());
    }
  }

  private int leader() throws IOException {
    return blob.tids().get(0);
  }

  /** The cure: unmaps blob and area from the target and the agent. Never throws. */
  @Override
  public void close() {
    blob.close();
  }
}
