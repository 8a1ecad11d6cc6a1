package dev.stasis.dump;

import dev.stasis.dump.files.FileStat;
import dev.stasis.dump.files.GhostFile;
import dev.stasis.dump.files.OpenFd;
import dev.stasis.dump.files.Pty;
import dev.stasis.dump.files.Sockets;
import dev.stasis.dump.files.UnixSocket;
import dev.stasis.linux.Linux;
import dev.stasis.linux.proc.Maps;
import dev.stasis.linux.proc.TaskStat;
import dev.stasis.linux.proc.Tasks;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The refusals of a dump that need no freeze: targets that must not or cannot be dumped, and trees
 * holding what the images cannot describe yet. Each is one line naming the PID or the fd.
 */
final class TargetChecks {
  private TargetChecks() {}

  /** One-line refusals for targets that must not or cannot be dumped, before touching them. */
  static void checkTarget(int pid) throws DumpException {
    if (pid <= 0) {
      throw new DumpException("invalid PID " + pid);
    }
    if (pid == 1) {
      throw new DumpException("PID 1 is the init process and cannot be dumped");
    }
    if (pid == Linux.getpid()) {
      throw new DumpException("PID " + pid + " is the agent itself");
    }
    TaskStat st;
    try {
      st = TaskStat.read(pid);
    } catch (NoSuchFileException e) {
      throw new DumpException("no process with PID " + pid);
    } catch (IOException e) {
      throw new DumpException("cannot read /proc/" + pid + "/stat: " + Dumper.reason(e), e);
    }
    if (st.isKernelThread()) {
      throw new DumpException("PID " + pid + " is a kernel thread");
    }
    if (st.isZombie()) {
      throw new DumpException("PID " + pid + " is a zombie (it has exited)");
    }
    if (st.pid() != pid) {
      throw new DumpException("PID " + pid + " is a thread, not a process");
    }
  }

  /**
   * Refuses, before anything is frozen, a tree holding a descriptor no file kind dumps (one line
   * naming the fd). A process that vanishes meanwhile is left to the seize to report.
   */
  static void refuseUnsupportedFiles(int pid) throws DumpException {
    refuseUnsupportedFiles(pid, false, DumpOptions.DEFAULT_GHOST_LIMIT);
  }

  /**
   * The same, accepting a shell's terminal if {@code shellJob} ({@link DumpOptions#shellJob}), and
   * refusing a ghost (deleted file: descriptor, mapping or executable) larger than {@code
   * ghostLimit} bytes.
   */
  static void refuseUnsupportedFiles(int pid, boolean shellJob, long ghostLimit)
      throws DumpException {
    ArrayDeque<Integer> todo = new ArrayDeque<>(List.of(pid));
    List<Integer> tree = new ArrayList<>();
    List<OpenFd> open = new ArrayList<>(); // read once, for every check across the tree
    while (!todo.isEmpty()) {
      int p = todo.poll();
      try {
        open.addAll(FileTable.refuseUnsupported(p));
        tree.add(p);
        todo.addAll(Tasks.children(p));
      } catch (DumpException e) {
        throw e;
      } catch (IOException e) {
        // gone, or its fds unreadable for now: the seize or the frozen dump says so
      }
    }
    Map<Long, Sockets.Held> sockets = Sockets.socketsOf(open);
    UnixSocket.refuseExternalPeers(sockets);
    try {
      Pty.refuseUnsupported(open, tree, shellJob);
    } catch (DumpException e) {
      throw e;
    } catch (IOException e) {
      // a process gone meanwhile: the seize or the frozen dump says so
    }
    dev.stasis.dump.files.InetSocket.refuseUnsupportedConnections(sockets);
    refuseOversizedGhosts(tree, open, ghostLimit);
  }

  /**
   * Refuses, before the freeze, a ghost over {@code limit} bytes: a descriptor's, a mapping's (the
   * mapped files are read from /proc/PID/maps, not smaps: no page walks) or the executable's. The
   * frozen dump checks again ({@link FileTable}), as a file may grow meanwhile.
   */
  static void refuseOversizedGhosts(List<Integer> tree, List<OpenFd> open, long limit)
      throws DumpException {
    for (OpenFd fd : open) {
      if (GhostFile.isGhost(fd.target(), fd.stat()) && fd.stat().size() > limit) {
        throw new DumpException(
            GhostFile.overLimit(
                "fd " + fd.fd() + " of PID " + fd.pid(), fd.target(), fd.stat().size(), limit));
      }
    }
    for (int p : tree) {
      try {
        java.nio.file.Path exe = java.nio.file.Path.of("/proc/" + p + "/exe");
        String target = java.nio.file.Files.readSymbolicLink(exe).toString();
        FileStat st = FileStat.of(exe);
        if (GhostFile.isGhost(target, st) && st.size() > limit) {
          throw new DumpException(
              GhostFile.overLimit("the executable of PID " + p, target, st.size(), limit));
        }
        String maps = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/" + p + "/maps"));
        for (Maps.Vma v : Maps.parse(maps)) {
          if (!mapsAGhost(v)) {
            continue;
          }
          java.nio.file.Path link =
              java.nio.file.Path.of("/proc/" + p + "/map_files/" + v.mapFilesName());
          FileStat ms = FileStat.of(link);
          if (GhostFile.isGhost(v.path(), ms) && ms.size() > limit) {
            throw new DumpException(
                GhostFile.overLimit(
                    "the mapping at 0x" + Long.toHexString(v.start()) + " of PID " + p,
                    v.path(),
                    ms.size(),
                    limit));
          }
        }
      } catch (DumpException e) {
        throw e;
      } catch (IOException | RuntimeException e) {
        // gone, or a mapping unmapped meanwhile: the frozen dump checks again
      }
    }
  }

  /**
   * Refuses, before anything is frozen, a tree with a thread in seccomp strict mode (filter mode is
   * dumped; strict mode is not, and a restore without it would run the thread unconfined).
   */
  static void refuseSeccomp(int pid) throws DumpException {
    ArrayDeque<Integer> todo = new ArrayDeque<>(List.of(pid));
    while (!todo.isEmpty()) {
      int p = todo.poll();
      try (java.nio.file.DirectoryStream<java.nio.file.Path> ds =
          java.nio.file.Files.newDirectoryStream(java.nio.file.Path.of("/proc/" + p + "/task"))) {
        for (java.nio.file.Path t : ds) {
          int tid = Integer.parseInt(t.getFileName().toString());
          if (dev.stasis.linux.proc.Status.readThread(p, tid).seccomp() == 1) {
            throw new DumpException(
                "thread " + tid + " of PID " + p + " runs in seccomp strict mode: not supported");
          }
        }
        todo.addAll(Tasks.children(p));
      } catch (DumpException e) {
        throw e;
      } catch (IOException e) {
        // gone meanwhile: the seize or the frozen dump says so
      }
    }
  }

  /**
   * Whether a mapping reads as a deleted file that {@code MemoryMap} hands to the file table as a
   * ghost: not the objects of the kernel's internal shmem mount that also print "(deleted)" (shared
   * anonymous memory as "/dev/zero (deleted)", SysV segments, memfds), nor AIO rings or anonymous
   * huge pages, each of which MemoryMap dumps or refuses in its own way.
   */
  static boolean mapsAGhost(Maps.Vma v) {
    String path = v.path();
    return path.endsWith(" (deleted)")
        && !(v.devMajor() == 0 && v.devMinor() == 1)
        && !path.startsWith("/SYSV")
        && !path.startsWith("/memfd:")
        && !path.startsWith("/[aio]")
        && !path.startsWith("/anon_hugepage");
  }

  /** What each kcmp type from KCMP_VM to KCMP_SIGHAND compares, for the refusal. */
  private static final String[] KCMP_SHARED = {
    null, "memory", "file table", "fs info", "signal" + " handlers"
  };

  // A child that shares its parent's mm, file table, fs or sighand (vfork, clone without
  // CLONE_THREAD) needs shared kernel objects in the images: not supported yet.
  static void checkNotSharing(int child, int parent) throws IOException {
    for (int type = Linux.KCMP_VM; type <= Linux.KCMP_SIGHAND; type++) {
      if (Linux.kcmpSame(parent, child, type, 0, 0)) {
        throw new DumpException(
            "PID "
                + child
                + " shares its "
                + KCMP_SHARED[type]
                + " with its parent "
                + parent
                + " (vfork or clone): not supported yet");
      }
    }
  }
}
