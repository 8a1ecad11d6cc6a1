package dev.stasis.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Freezes a container through its cgroup so that no process can fork, exit or change while the dump
 * engine seizes them. v1 writes FROZEN/THAWED to {@code freezer.state}, v2 writes 1/0 to {@code
 * cgroup.freeze} and watches {@code cgroup.events}; both are asynchronous in the kernel, so
 * freezing waits until the state reads back as frozen.
 */
public final class CgroupFreezer {
  private CgroupFreezer() {}

  /** A frozen cgroup; {@link #close()} thaws it and may be called any number of times. */
  public static final class Frozen implements AutoCloseable {
    private final ContainerProcesses.CgroupVersion version;
    private final Path dir;
    private boolean thawed;

    private Frozen(ContainerProcesses.CgroupVersion version, Path dir) {
      this.version = version;
      this.dir = dir;
    }

    public Path dir() {
      return dir;
    }

    /** Thaws; errors are reported, but a second call still retries (it is on every exit path). */
    public synchronized void thaw() throws IOException {
      if (thawed) {
        return;
      }
      write(version, dir, false);
      thawed = true;
    }

    @Override
    public void close() throws IOException {
      thaw();
    }
  }

  /**
   * A handle on a cgroup that may have been left frozen (by an agent that died mid-dump); its
   * {@code thaw()} makes sure it runs.
   */
  public static Frozen thawOnly(ContainerProcesses.Container c) {
    return new Frozen(c.version(), c.cgroupDir());
  }

  public static Frozen freeze(ContainerProcesses.Container c, Duration timeout) throws IOException {
    Path dir = c.cgroupDir();
    if (!Files.isDirectory(dir)) {
      throw new IOException("cgroup " + dir + " of container " + c.id() + " does not exist");
    }
    Frozen f = new Frozen(c.version(), dir);
    write(c.version(), dir, true);
    long deadline = System.nanoTime() + timeout.toNanos();
    try {
      while (!isFrozen(c.version(), dir)) {
        if (System.nanoTime() > deadline) {
          throw new IOException(
              "cgroup " + dir + " did not freeze within " + timeout.toMillis() + " ms");
        }
        Thread.sleep(2);
      }
    } catch (IOException | RuntimeException e) {
      f.thaw();
      throw e;
    } catch (InterruptedException e) {
      f.thaw();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while freezing " + dir, e);
    }
    return f;
  }

  static boolean isFrozen(ContainerProcesses.CgroupVersion v, Path dir) throws IOException {
    if (v == ContainerProcesses.CgroupVersion.V1) {
      return Files.readString(dir.resolve("freezer.state")).trim().equals("FROZEN");
    }
    for (String line : Files.readString(dir.resolve("cgroup.events")).split("\n")) {
      if (line.trim().equals("frozen 1")) {
        return true;
      }
    }
    return false;
  }

  private static void write(ContainerProcesses.CgroupVersion v, Path dir, boolean freeze)
      throws IOException {
    if (v == ContainerProcesses.CgroupVersion.V1) {
      Files.writeString(dir.resolve("freezer.state"), freeze ? "FROZEN" : "THAWED");
    } else {
      Files.writeString(dir.resolve("cgroup.freeze"), freeze ? "1" : "0");
    }
  }
}
