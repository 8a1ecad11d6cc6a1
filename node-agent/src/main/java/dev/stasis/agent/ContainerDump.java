package dev.stasis.agent;

import dev.stasis.linux.proc.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * Checkpoints one container: freeze its cgroup, check what is in it, let the engine seize the
 * processes while they are frozen, thaw the cgroup once they are seized (they then stay stopped
 * under ptrace until the engine detaches), and thaw on every other path too.
 *
 * <p>Why thaw after seizing: a frozen task cannot enter the ptrace stop the engine waits for; the
 * freeze only guarantees that nothing forks or exits between listing and seizing.
 */
public final class ContainerDump {
  private ContainerDump() {}

  /** What happened, in milliseconds: freezing, frozen (workload stopped), dump, upload tail. */
  public record Result(
      ContainerProcesses.Container container,
      long freezeMillis,
      long frozenMillis,
      long dumpMillis,
      long uploadMillis,
      long bytes,
      Map<String, Long> engineTimings) {}

  /** The request refers to something that cannot be dumped; nothing was changed. */
  public static final class RefusedException extends IOException {
    RefusedException(String m) {
      super(m);
    }
  }

  public static Result run(
      ContainerProcesses.Container c,
      boolean leaveRunning,
      TrackingSink sink,
      ProcessDumper dumper,
      Consumer<String> progress,
      Duration freezeTimeout)
      throws Exception {
    long t0 = System.nanoTime();
    CgroupFreezer.Frozen frozen = CgroupFreezer.freeze(c, freezeTimeout);
    long frozenAt = System.nanoTime();
    try {
      // Frozen, cgroup.procs is the authoritative and stable member list. The engine dumps the
      // process tree under the container's init; a process outside that tree (e.g. one entered
      // with `kubectl exec`) would silently be missing from the checkpoint, so it is refused.
      List<Integer> procs = procs(frozen.dir());
      ContainerProcesses.Task init = c.init();
      List<Integer> outside = outsideTree(init.hostPid(), procs);
      if (!procs.contains(init.hostPid()) || !outside.isEmpty()) {
        throw new RefusedException(
            "container "
                + c.id()
                + " has processes outside its init's tree (host PIDs "
                + outside
                + ", init "
                + init.hostPid()
                + "); they would be missing from the checkpoint");
      }
      Map<String, String> facts = new LinkedHashMap<>();
      facts.put("container.id", c.id());
      facts.put("container.pid.host", Integer.toString(init.hostPid()));
      facts.put("container.pid.ns", Integer.toString(init.nsPid()));
      facts.put("container.processes", Integer.toString(procs.size()));
      sink.recordMetadata(facts);
      progress.accept(
          "frozen; dumping host PID " + init.hostPid() + " (PID " + init.nsPid() + " in the pod)");

      AtomicReference<Object> outcome = new AtomicReference<>();
      Thread dumpThread =
          new Thread(
              () -> {
                try {
                  outcome.set(dumper.dump(init.hostPid(), leaveRunning, sink, progress));
                } catch (Throwable e) {
                  outcome.set(e);
                }
              },
              "stasis-dump-" + c.id().substring(0, 12));
      long dumpStart = System.nanoTime();
      dumpThread.start();
      waitUntilTracedOrDone(init.hostPid(), dumpThread);
      frozen.thaw();
      dumpThread.join();
      long dumpMillis = (System.nanoTime() - dumpStart) / 1_000_000;
      Object o = outcome.get();
      if (o instanceof Exception e) {
        throw e;
      }
      if (o instanceof Throwable e) {
        throw new IOException("dump engine crashed: " + e, e);
      }
      @SuppressWarnings("unchecked")
      Map<String, Long> timings = (Map<String, Long>) o;
      return new Result(
          c,
          (frozenAt - t0) / 1_000_000,
          (System.nanoTime() - frozenAt) / 1_000_000,
          dumpMillis,
          sink.commitMillis(),
          sink.bytes(),
          timings);
    } finally {
      frozen.thaw();
    }
  }

  /** Polls until the engine attached to the process (TracerPid set) or gave up early. */
  private static void waitUntilTracedOrDone(int pid, Thread dumpThread)
      throws InterruptedException, IOException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (dumpThread.isAlive() && System.nanoTime() < deadline) {
      try {
        if (Status.read(pid).tracerPid() != 0) {
          return;
        }
      } catch (NoSuchFileException e) {
        return;
      }
      Thread.sleep(1);
    }
  }

  /** Members of the cgroup that do not descend from {@code root} (by PPid chains in /proc). */
  static List<Integer> outsideTree(int root, List<Integer> procs) throws IOException {
    List<Integer> outside = new ArrayList<>();
    for (int p : procs) {
      int cur = p;
      int hops = 0;
      while (cur != root && cur > 1 && hops++ < 4096) {
        cur = ppid(cur);
      }
      if (cur != root) {
        outside.add(p);
      }
    }
    return outside;
  }

  private static int ppid(int pid) throws IOException {
    try {
      return Status.read(pid).ppid();
    } catch (NoSuchFileException e) {
      return 0;
    }
  }

  static List<Integer> procs(Path cgroupDir) throws IOException {
    List<Integer> out = new ArrayList<>();
    for (String line : Files.readAllLines(cgroupDir.resolve("cgroup.procs"))) {
      if (!line.isBlank()) {
        out.add(Integer.parseInt(line.trim()));
      }
    }
    return out;
  }
}
