package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Sockets the engine refuses: a TCP connection that is not established (CLOSE_WAIT here), a
 * connected ping socket. Each dump fails before anything is frozen with one line naming the fd and
 * why, writes no images, and the workload goes on untraced and unstopped with its socket as it was
 * (it checks that itself).
 */
class RefusedSocketsIT {

  /** Dumps {@code w}, expects the refusal matching {@code line}, and that nothing was touched. */
  private static void refused(Workloads.Running w, String line) throws Exception {
    Path images = w.state.resolve("images");
    Workloads.Cli r =
        Workloads.stasis(
            "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
    assertNotEquals(0, r.exit(), "the dump must fail: " + r.stdout());
    DumpFaultsIT.assertOneLine(r.stderr());
    assertTrue(r.stderr().strip().matches("(?s).*" + line + ".*"), line + " in: " + r.stderr());
    assertTrue(!Files.exists(images.resolve("pstree.img")), "no images written");
    String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
    assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
    assertTrue(!status.contains("State:\tt"), "not stopped: " + status);
    String after = w.check();
    assertTrue(after.startsWith("OK"), "workload after the refusal: " + after);
  }

  @Test
  void tcpConnectionInCloseWaitIsRefused() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "closewait")) {
      refused(
          w,
          "fd \\d+ of PID "
              + w.pid
              + " \\(TCP socket:\\[\\d+\\]\\) is a TCP connection in state CLOSE_WAIT: only"
              + " established connections are supported");
    }
  }

  @Test
  void connectedPingSocketIsRefused() throws Exception {
    try (AutoCloseable ping = PingSocketIT.allowPing();
        Workloads.Running w = Workloads.start("ping", "connected")) {
      refused(
          w,
          "fd \\d+ of PID "
              + w.pid
              + " \\(PINGv6 socket:\\[\\d+\\]\\) is a connected ping socket: not supported");
    }
  }
}
