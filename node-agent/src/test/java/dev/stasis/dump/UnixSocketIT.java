package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * Unix sockets end to end with the unix workload (stream, datagram and seqpacket socketpairs with
 * queued data, a path and an abstract listener, an accepted connection, a named datagram socket
 * with a connected sender, a half-closed pair): dumped by the packaged agent, decoded by both
 * crits, killed, restored by the judge, then the workload checks its queues, peers, listeners and
 * options itself. And {@code --leave-running} leaves it serving with nothing changed. Both also
 * with the workload in a network namespace of its own.
 */
class UnixSocketIT {

  @Test
  void unixSocketsSurviveDumpAndRestore() throws Exception {
    dumpKillRestore();
  }

  /**
   * The same sockets made in a network namespace of the workload's own, as every container's are:
   * read from that namespace's sock_diag table, restored by the judge into the namespace it makes
   * again from the images.
   */
  @Test
  void unixSocketsOfAnotherNetworkNamespaceSurviveDumpAndRestore() throws Exception {
    dumpKillRestore("netns");
  }

  private static void dumpKillRestore(String... args) throws Exception {
    try (Workloads.Running w = Workloads.start("unix", args)) {
      if (args.length > 0) {
        assertNotEquals(
            Files.readSymbolicLink(Path.of("/proc/self/ns/net")),
            Files.readSymbolicLink(Path.of("/proc/" + w.pid + "/ns/net")),
            "the workload is in a network namespace of its own");
      }
      Path images = w.dumpHealthyAndKill();

      for (Crit.Version v : Crit.Version.values()) {
        Map<String, JsonNode> decoded = Crit.decodeDir(v, images);
        Map<Integer, JsonNode> byIno = new HashMap<>();
        Map<Integer, Integer> idOfIno = new HashMap<>();
        for (JsonNode f : Crit.entries(decoded.get("files.img"))) {
          if (f.get("type").asText().equals("UNIXSK")) {
            JsonNode u = f.get("usk");
            assertEquals(f.get("id").asInt(), u.get("id").asInt(), v + " usk id");
            byIno.put(u.get("ino").asInt(), u);
            idOfIno.put(u.get("ino").asInt(), u.get("id").asInt());
          }
        }
        assertEquals(14, byIno.size(), v + " fourteen unix sockets in files.img");
        int listeners = 0;
        for (JsonNode u : byIno.values()) {
          int peer = u.get("peer").asInt();
          if (peer != 0) {
            assertTrue(byIno.containsKey(peer), v + " peer " + peer + " is dumped too: " + u);
          }
          if (u.get("state").asText().matches("LISTEN|10")) {
            listeners++;
          }
        }
        assertEquals(2, listeners, v + " two listeners");
        List<Integer> lengths = new ArrayList<>();
        Set<Integer> queuedFor = new HashSet<>();
        for (JsonNode p : Crit.entries(decoded.get("sk-queues.img"))) {
          lengths.add(p.get("length").asInt());
          queuedFor.add(p.get("id_for").asInt());
        }
        assertEquals(
            List.of(3, 4, 4, 8, 10, 12, 12),
            lengths.stream().sorted().toList(),
            v + " queued packets in sk-queues.img");
        assertEquals(6, queuedFor.size(), v + " six sockets have data queued: " + queuedFor);
        assertTrue(idOfIno.values().containsAll(queuedFor), v + " queues belong to dumped sockets");
        int fdinfoSockets = 0;
        for (JsonNode fd : Crit.entries(decoded.get("fdinfo-2.img"))) {
          if (fd.get("type").asText().equals("UNIXSK")) {
            fdinfoSockets++;
          }
        }
        assertEquals(14, fdinfoSockets, v + " fourteen socket descriptors");
      }

      CriuJudge.restore(images);
      String after = w.check();
      assertTrue(after.startsWith("OK"), "unix sockets after restore: " + after);
      // and again: the restored sockets keep working, not only once
      String again = w.check();
      assertTrue(again.startsWith("OK"), "unix sockets on a second check: " + again);
    }
  }

  @Test
  void leaveRunningLeavesTheSocketsServingUntouched() throws Exception {
    leaveRunning();
  }

  @Test
  void leaveRunningInAnotherNetworkNamespaceLeavesTheSocketsServingUntouched() throws Exception {
    leaveRunning("netns");
  }

  private static void leaveRunning(String... args) throws Exception {
    try (Workloads.Running w = Workloads.start("unix", args)) {
      LeaveRunningIT.Snapshot before = LeaveRunningIT.Snapshot.of(w.pid);
      Map<String, String> fdsBefore = fds(w.pid);
      Path images = w.state.resolve("images");
      w.dumpLeavingRunning(images);
      assertTrue(Files.exists(images.resolve("sk-queues.img")), "queues were dumped");
      LeaveRunningIT.Snapshot after = LeaveRunningIT.Snapshot.of(w.pid);
      assertEquals(before.maps(), after.maps(), "memory map unchanged, no parasite left");
      assertEquals(before.mainSyscall(), after.mainSyscall(), "main thread sp/pc unchanged");
      assertEquals(fdsBefore, fds(w.pid), "descriptors unchanged");
      String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
      assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
      String verdict = w.check();
      assertTrue(verdict.startsWith("OK"), "still serving with its queues: " + verdict);
    }
  }

  private static Map<String, String> fds(int pid) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
      for (Path p : ds) {
        out.put(p.getFileName().toString(), Files.readSymbolicLink(p).toString());
      }
    }
    return out;
  }
}
