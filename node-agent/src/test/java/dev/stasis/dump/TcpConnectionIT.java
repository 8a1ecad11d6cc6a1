package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Established TCP connections end to end with the tcp workload, which holds both ends of a loopback
 * connection over IPv4 and over IPv6 (client and accepted server end, plus the listener) with
 * unread data queued in both directions (3000 bytes for the server, 20000 for the client).
 *
 * <p>Kill mode: the packaged agent dumps it (the connections through TCP_REPAIR), both crits decode
 * four established inet entries and a tcp-stream image per connection end whose receive queue holds
 * exactly what the workload queued, the process is killed (its sockets in repair mode, so neither
 * end sends a FIN or RST), the judge restores with {@code --tcp-established}, and the workload
 * reads every queued byte and exchanges data both ways on both connections.
 *
 * <p>The dump locks each connection out of the network with CRIU's iptables rules, which the
 * judge's restore deletes; {@code --leave-running} deletes them itself, and the connections are out
 * of repair mode again and go on working, with the queued data still there. A third case has the
 * peer outside the dumped tree.
 */
class TcpConnectionIT {
  private static final Duration BOUND = Duration.ofSeconds(30);

  @Test
  void establishedConnectionsSurviveDumpKillAndRestore() throws Exception {
    List<Integer> ports = null;
    try (Workloads.Running w = Workloads.start("tcp")) {
      ports = ports(w);
      Path images = w.dumpHealthyAndKill();
      assertTrue(
          !locks("iptables", ports.get(0)).isEmpty(),
          "the IPv4 connection is locked until restored");

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        List<Long> established = new ArrayList<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("INETSK")) {
            JsonNode isk = f.get("isk");
            if (isk.get("state").asText().matches("ESTABLISHED|1")) {
              established.add(isk.get("ino").asLong());
            }
          }
        }
        assertEquals(4, established.size(), v + " four established ends: " + established);
        List<Integer> inq = new ArrayList<>();
        for (long ino : established) {
          String name = "tcp-stream-" + Long.toHexString(ino) + ".img";
          assertTrue(decoded.containsKey(name), v + " " + name + " in " + decoded.keySet());
          JsonNode t = Crit.entries(decoded.get(name)).get(0);
          inq.add(t.get("inq_len").asInt());
          assertEquals(0, t.get("outq_len").asInt(), v + " " + name + " nothing in flight");
        }
        assertEquals(
            List.of(3000, 3000, 20000, 20000),
            inq.stream().sorted().toList(),
            v + " receive queues of the four ends");
      }

      CriuJudge.restore(images, "--tcp-established");
      assertNoLocks(ports(w), "after the restore");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "TCP connections after restore: " + after);
      String again = w.check();
      assertTrue(again.startsWith("OK"), "and once more: " + again);
    } finally {
      if (ports != null) {
        unlockAll(ports);
      }
    }
  }

  /**
   * A connection whose peer (the test's own socket) is outside the dumped tree: the dump locks it
   * out of the network (CRIU's iptables rules), so bytes the peer sends after the kill are dropped
   * rather than answered with a reset; the peer retransmits them, and once the judge has restored
   * the connection (and deleted the rules) they reach the workload, which echoes them back; then
   * the connection carries new data both ways.
   */
  @Test
  void connectionToAPeerOutsideTheTreeSurvivesKillAndRestore() throws Exception {
    try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      int port = server.getLocalPort();
      try (Workloads.Running w = Workloads.start("tcp", "external", Integer.toString(port));
          Socket peer = server.accept()) {
        peer.setSoTimeout(30_000);
        OutputStream out = peer.getOutputStream();
        InputStream in = peer.getInputStream();
        out.write("before\n".getBytes(StandardCharsets.US_ASCII));
        assertEquals("before\n", read(in, 7), "echo before the dump");
        Path images = w.dumpHealthyAndKill();
        String rules = Exec.ok(BOUND, List.of("iptables", "-S"));
        assertTrue(
            rules.contains("--sport " + port) && rules.contains("--dport " + port),
            "the connection is locked while the process is gone: " + rules);
        // sent while nothing holds the connection: dropped by the lock, not reset
        out.write("during\n".getBytes(StandardCharsets.US_ASCII));
        Thread.sleep(500);

        CriuJudge.restore(images, "--tcp-established");
        assertEquals("during\n", read(in, 7), "bytes sent during the gap reach the workload");
        out.write("after\n".getBytes(StandardCharsets.US_ASCII));
        assertEquals("after\n", read(in, 6), "echo after the restore");
        String after = w.check();
        assertTrue(after.startsWith("OK"), "external connection after restore: " + after);
        assertEquals("", locks("iptables", port), "the restore removed the lock");
      } finally {
        unlock("iptables", port);
      }
    }
  }

  /** CRIU-style lock rules (mark 0xc114) of {@code tool} that name {@code port}, one per line. */
  static String locks(String tool, int port) {
    StringBuilder b = new StringBuilder();
    for (String rule : Exec.ok(BOUND, List.of(tool, "-S")).split("\n")) {
      if (rule.contains("0xc114")
          && (rule.contains("--sport " + port + " ") || rule.contains("--dport " + port + " "))) {
        b.append(rule).append('\n');
      }
    }
    return b.toString();
  }

  /** Deletes what {@link #locks} finds, so that a failed test leaves no rule behind. */
  static void unlock(String tool, int port) {
    for (String rule : locks(tool, port).split("\n")) {
      if (rule.startsWith("-A ")) {
        List<String> cmd = new ArrayList<>(List.of(tool, "-w", "-D"));
        cmd.addAll(List.of(rule.substring(3).split(" ")));
        Exec.run(BOUND, cmd);
      }
    }
  }

  /** The four ports of the tcp workload (v4 listener and client, v6 listener and client). */
  private static List<Integer> ports(Workloads.Running w) throws java.io.IOException {
    return java.util.Arrays.stream(Files.readString(w.state.resolve("ports")).strip().split(" "))
        .map(Integer::parseInt)
        .toList();
  }

  private static void assertNoLocks(List<Integer> ports, String when) {
    for (int i = 0; i < 4; i++) {
      String tool = i < 2 ? "iptables" : "ip6tables";
      assertEquals(
          "", locks(tool, ports.get(i)), tool + " rules for port " + ports.get(i) + " " + when);
    }
  }

  private static void unlockAll(List<Integer> ports) {
    for (int i = 0; i < 4; i++) {
      unlock(i < 2 ? "iptables" : "ip6tables", ports.get(i));
    }
  }

  private static String read(InputStream in, int n) throws java.io.IOException {
    return new String(in.readNBytes(n), StandardCharsets.US_ASCII);
  }

  @Test
  void connectionsGoOnAfterDumpWithLeaveRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp")) {
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      Path images = w.state.resolve("images");
      w.dumpLeavingRunning(images);
      long streams =
          Files.list(images)
              .filter(p -> p.getFileName().toString().startsWith("tcp-stream-"))
              .count();
      assertEquals(4, streams, "a tcp-stream image per connection end");
      assertNoLocks(ports(w), "after the dump: unlocked again");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "connections after --leave-running: " + after);
    }
  }

  /**
   * The connections in a network namespace of the workload's own, as a container's: the dump locks
   * that namespace (CRIU's chain, carried in the images' filter rules), the judge makes the
   * namespace again, restores the connections and deletes the chain; every byte queued either way
   * arrives once.
   */
  @Test
  void establishedConnectionsInAnotherNetworkNamespaceSurviveDumpKillAndRestore() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "netns")) {
      assertOwnNetns(w.pid);
      Path images = w.dumpHealthyAndKill();
      String rules = imageRules(images);
      assertTrue(rules.contains("CRIU"), "the images carry the namespace's lock: " + rules);
      CriuJudge.restore(images, "--tcp-established");
      assertEquals("", criuChain(w.pid), "the restore deleted the lock in the new namespace");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "TCP connections after restore: " + after);
      String again = w.check();
      assertTrue(again.startsWith("OK"), "and once more: " + again);
    }
  }

  @Test
  void connectionsInAnotherNetworkNamespaceGoOnAfterDumpWithLeaveRunning() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "netns")) {
      assertOwnNetns(w.pid);
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      Path images = w.state.resolve("images");
      w.dumpLeavingRunning(images);
      try (var files = Files.list(images)) {
        assertEquals(
            4,
            files.filter(p -> p.getFileName().toString().startsWith("tcp-stream-")).count(),
            "a tcp-stream image per connection end");
      }
      assertEquals("", criuChain(w.pid), "after the dump: the namespace is unlocked again");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "connections after --leave-running: " + after);
    }
  }

  /**
   * An agent that died holding a namespace's lock left CRIU's chain and its jumps behind (traffic
   * blocked). The next dump's lock refills the chain and adds its own jumps; its unlock deletes
   * both pairs and the chain: the dump succeeds and the connections go on.
   */
  @Test
  void aLockLeftByADeadAgentIsDeletedWithTheNextDumpsUnlock() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "netns")) {
      assertOwnNetns(w.pid);
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      leaveLock(w.pid);
      w.dumpLeavingRunning(w.state.resolve("images"));
      assertEquals("", criuChain(w.pid), "after the dump: no chain, no jump left");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "connections after --leave-running: " + after);
    }
  }

  /**
   * Kill mode over a lock left by a dead agent: the dump takes the lock over (one pair of jumps in
   * the images, not two), so the judge's unlock (one -D each, then -X) deletes it after the restore
   * and the connections go on.
   */
  @Test
  void aLockLeftByADeadAgentIsTakenOverSoTheRestoreUnlocks() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "netns")) {
      assertOwnNetns(w.pid);
      leaveLock(w.pid);
      Path images = w.state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "the dump: " + r.stderr());
      w.awaitGone();
      String rules = imageRules(images);
      // nft's listing (iptables-nft) or iptables-save's text (legacy): a chain per family, and
      // one pair of jumps to each
      long chains =
          rules.lines().filter(l -> l.contains("chain CRIU {") || l.startsWith(":CRIU ")).count();
      long jumps =
          rules.lines().filter(l -> l.endsWith("jump CRIU") || l.endsWith("-j CRIU")).count();
      assertTrue(chains >= 1, "the images carry the lock: " + rules);
      assertEquals(2 * chains, jumps, "one jump from INPUT and OUTPUT to each chain: " + rules);
      CriuJudge.restore(images, "--tcp-established");
      assertEquals("", criuChain(w.pid), "the restore deleted the lock in the new namespace");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "TCP connections after restore: " + after);
    }
  }

  /**
   * A dump that fails after it locked the namespace (a unix socket with a descriptor queued, at a
   * higher descriptor than the connections) deletes the lock again: the connections go on.
   */
  @Test
  void aFailedDumpUnlocksTheNetworkNamespace() throws Exception {
    try (Workloads.Running w = Workloads.start("tcp", "netns", "scmrights")) {
      assertOwnNetns(w.pid);
      String before = w.check();
      assertTrue(before.startsWith("OK"), "workload is healthy before the dump: " + before);
      Workloads.Cli r =
          Workloads.stasis(
              "dump",
              "--pid",
              Integer.toString(w.pid),
              "--images-dir",
              w.state.resolve("images").toString(),
              "--leave-running");
      assertEquals(1, r.exit(), "the dump fails: " + r.stderr());
      assertTrue(
          r.stderr().contains("descriptors queued in it (SCM_RIGHTS)"),
          "on the queued descriptor: " + r.stderr());
      assertEquals("", criuChain(w.pid), "after the failed dump: the namespace is unlocked");
      String after = w.check();
      assertTrue(after.startsWith("OK"), "connections after the failed dump: " + after);
    }
  }

  private static void assertOwnNetns(int pid) throws java.io.IOException {
    assertNotEquals(
        Files.readSymbolicLink(Path.of("/proc/self/ns/net")),
        Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net")),
        "the workload is in a network namespace of its own");
  }

  /** Leaves CRIU's lock chain and its jumps in PID's network namespace, as a dead agent would. */
  private static void leaveLock(int pid) throws Exception {
    String ns = "--net=/proc/" + pid + "/ns/net";
    for (String rule :
        List.of(
            "-N CRIU",
            "-A CRIU -m mark --mark 0xC114 -j ACCEPT",
            "-A CRIU -j DROP",
            "-I INPUT -j CRIU",
            "-I OUTPUT -j CRIU")) {
      List<String> cmd = new ArrayList<>(List.of("nsenter", ns, "iptables", "-w"));
      cmd.addAll(List.of(rule.split(" ")));
      Exec.ok(BOUND, cmd);
    }
    assertTrue(criuChain(pid).contains("-A INPUT -j CRIU"), "the leftover lock is in place");
  }

  /** The filter rule images' text (iptables-, ip6tables-, nftables-ID.img) in {@code images}. */
  private static String imageRules(Path images) throws java.io.IOException {
    String rules = "";
    for (String img : List.of("iptables-", "ip6tables-", "nftables-")) {
      try (var files = Files.list(images)) {
        for (Path p : files.filter(f -> f.getFileName().toString().startsWith(img)).toList()) {
          rules += Files.readString(p, StandardCharsets.ISO_8859_1);
        }
      }
    }
    return rules;
  }

  /** The lines of iptables and ip6tables -S in PID's network namespace that name CRIU's chain. */
  private static String criuChain(int pid) throws Exception {
    StringBuilder out = new StringBuilder();
    for (String tool : List.of("iptables", "ip6tables")) {
      String text =
          Exec.ok(BOUND, List.of("nsenter", "-t", Integer.toString(pid), "-n", tool, "-w", "-S"));
      text.lines().filter(l -> l.contains("CRIU")).forEach(l -> out.append(l).append('\n'));
    }
    return out.toString();
  }
}
