package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.testing.Crit;
import dev.stasis.testing.CriuJudge;
import dev.stasis.testing.Exec;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A process in a network namespace of its own holding one end ({@code vin0}: own MAC, MTU 1400,
 * 10.79.K.2/24, a route via 10.79.K.1) of a veth pair whose other end ({@code stvK}, 10.79.K.1/24)
 * is in the test's namespace, talking TCP to the test's echo server over it (the {@code netveth}
 * workload). The packaged agent's dump writes the same netdev-ID.img and netns-ID.img as {@code
 * criu dump} of the same tree (a VETH entry: MAC, MTU, flags, conf, the peer's index, no peer
 * namespace); the workload is killed (the pair goes with its namespace), plain {@code criu restore
 * --veth-pair vin0=stvK} makes a new pair, the test gives its end the address again (what a
 * runtime's network setup does) and the restored process talks over it again, with its address,
 * route, MTU, MAC and link state as before. Other device kinds are refused before the freeze.
 *
 * <p>A pair between two namespaces of the dumped tree (the {@code netpair} workload) is dumped as
 * criu dump writes it: each end names the other's namespace ({@code peer_nsid}), each netns image
 * the id its namespace gave the other ({@code nsids}); criu restore makes the pair again between
 * the two new namespaces and the leader talks to its child over it (the child's listener back in
 * the child's namespace: sockets name theirs in {@code ns_id}).
 */
class NetVethIT {
  private static final Duration BOUND = Duration.ofSeconds(30);

  @Test
  void aVethEndComesBackAndCarriesTrafficAgain() throws Exception {
    int k = freeIndex();
    String host = "stv" + k;
    try (Echo echo = new Echo();
        Workloads.Running w = start(k, echo.port())) {
      try {
        Path theirs = NetSysctlsIT.criuDump(w);
        int peerIndex = Integer.parseInt(Files.readString(sys(host, "ifindex")).strip());
        Path ours = w.dumpHealthyAndKill();

        Map<String, JsonNode> a = Crit.decodeDir(Crit.Version.UPSTREAM, theirs);
        Map<String, JsonNode> b = Crit.decodeDir(Crit.Version.UPSTREAM, ours);
        String netdev = NetSysctlsIT.name(b, "netdev-");
        String netns = NetSysctlsIT.name(b, "netns-");
        assertEquals(Crit.entries(a.get(netdev)), Crit.entries(b.get(netdev)), "netdev image");
        assertEquals(Crit.entries(a.get(netns)), Crit.entries(b.get(netns)), "netns image");
        for (Crit.Version v : Crit.Version.values()) {
          JsonNode veth = null;
          for (JsonNode d : Crit.entries(Crit.decode(v, ours.resolve(netdev)))) {
            if (d.path("name").asText().equals("vin0")) {
              veth = d;
            }
          }
          assertTrue(veth != null, v + ": no vin0 in " + netdev);
          assertEquals("VETH", veth.path("type").asText(), v + ": " + veth);
          assertEquals(1400, veth.path("mtu").asInt(), v + ": " + veth);
          assertEquals(peerIndex, veth.path("peer_ifindex").asInt(), v + ": " + veth);
          assertFalse(veth.has("peer_nsid"), v + ": the peer's namespace is outside: " + veth);
          assertTrue(veth.has("address"), v + ": " + veth);
        }
        for (int i = 0; i < 200 && Files.exists(sys(host, "ifindex")); i++) {
          Thread.sleep(25);
        }
        assertFalse(Files.exists(sys(host, "ifindex")), host + " went with the namespace");

        CriuJudge.restore(ours, "--veth-pair", "vin0=" + host);
        Exec.ok(BOUND, List.of("ip", "addr", "add", "10.79." + k + ".1/24", "dev", host));
        Exec.ok(BOUND, List.of("ip", "link", "set", host, "up"));
        String after = w.check();
        assertTrue(after.startsWith("OK"), after);
        assertTrue(after.contains("echoes"), after);
        String ns = "--net=/proc/" + w.pid + "/ns/net";
        String addr = Exec.ok(BOUND, List.of("nsenter", ns, "ip", "-o", "addr", "show", "vin0"));
        assertTrue(addr.contains("inet 10.79." + k + ".2/24"), addr);
        String route = Exec.ok(BOUND, List.of("nsenter", ns, "ip", "route"));
        assertTrue(route.contains("10.80.0.0/16 via 10.79." + k + ".1 dev vin0"), route);
        String link = Exec.ok(BOUND, List.of("nsenter", ns, "ip", "link", "show", "vin0"));
        assertTrue(link.contains("mtu 1400") && link.contains(",UP"), link);
        assertTrue(link.contains("02:00:00:4f:00:" + String.format("%02x", k)), link);
      } finally {
        Exec.run(
            BOUND, List.of("ip", "link", "del", host)); // gone with the namespace if all went well
      }
    }
  }

  @Test
  void aPairBetweenTwoNamespacesOfTheTreeIsWrittenAsCriuWritesItAndComesBack() throws Exception {
    try (Workloads.Running w = Workloads.start("netpair")) {
      Path theirs = NetSysctlsIT.criuDump(w);
      Path ours = w.dumpHealthyAndKill();
      Map<String, JsonNode> a = Crit.decodeDir(Crit.Version.UPSTREAM, theirs);
      Map<String, JsonNode> b = Crit.decodeDir(Crit.Version.UPSTREAM, ours);
      List<String> net =
          b.keySet().stream().filter(n -> n.matches("net(dev|ns)-[0-9]+\\.img")).toList();
      assertEquals(
          a.keySet().stream().filter(n -> n.matches("net(dev|ns)-[0-9]+\\.img")).toList(),
          net,
          "the same namespaces");
      assertEquals(4, net.size(), "two namespaces: " + net);
      for (String n : net) {
        assertEquals(Crit.entries(a.get(n)), Crit.entries(b.get(n)), n);
      }
      // each end names the other namespace, each namespace has an id for the other
      Map<String, Integer> nsOf = new java.util.HashMap<>();
      Map<String, Integer> peerNs = new java.util.HashMap<>();
      for (String n : net) {
        int id = Integer.parseInt(n.replaceAll("[^0-9]", ""));
        if (n.startsWith("netns-")) {
          JsonNode ids = Crit.entries(b.get(n)).get(0).path("nsids");
          assertEquals(1, ids.size(), n + ": " + ids);
          assertNotEquals(id, ids.get(0).path("target_ns_id").asInt(), n + ": " + ids);
          continue;
        }
        for (JsonNode d : Crit.entries(b.get(n))) {
          String name = d.path("name").asText();
          if (name.startsWith("np")) {
            nsOf.put(name, id);
            peerNs.put(name, d.path("peer_nsid").asInt(-1));
          }
        }
      }
      assertEquals(nsOf.get("npb"), peerNs.get("npa"), "npa's peer namespace: " + peerNs);
      assertEquals(nsOf.get("npa"), peerNs.get("npb"), "npb's peer namespace: " + peerNs);

      CriuJudge.restore(ours);
      String after = w.check();
      assertTrue(after.startsWith("OK"), after);
    }
  }

  @Test
  void otherDeviceKindsAreRefusedBeforeTheFreezeNamingDeviceAndKind() throws Exception {
    for (String extra : List.of("tun", "pair")) {
      int k = freeIndex();
      try (Echo echo = new Echo();
          Workloads.Running w = start(k, echo.port(), extra)) {
        Path images = w.state.resolve("images");
        Workloads.Cli r =
            Workloads.stasis(
                "dump", "--pid", Integer.toString(w.pid), "--images-dir", images.toString());
        assertNotEquals(0, r.exit(), extra + ": the dump must be refused");
        DumpFaultsIT.assertOneLine(r.stderr());
        String named =
            extra.equals("tun") ? "tun7 (kind tun)" : "(kind veth, its peer in the same namespace)";
        assertTrue(r.stderr().contains("network devices not supported yet"), r.stderr());
        assertTrue(r.stderr().contains(named), r.stderr());
        assertFalse(r.stderr().contains("vin0"), "the veth to the outside is fine: " + r.stderr());
        assertFalse(Files.exists(images.resolve("pstree.img")), "no images written");
        String status = Files.readString(Path.of("/proc/" + w.pid + "/status"));
        assertTrue(status.contains("TracerPid:\t0\n"), "untraced: " + status);
        String after = w.check();
        assertTrue(after.startsWith("OK"), after);
      } finally {
        Exec.run(BOUND, List.of("ip", "link", "del", "stv" + k));
      }
    }
  }

  private static Workloads.Running start(int k, int port, String... extra) throws Exception {
    String[] args = new String[3 + extra.length];
    args[0] = Long.toString(ProcessHandle.current().pid());
    args[1] = Integer.toString(k);
    args[2] = Integer.toString(port);
    System.arraycopy(extra, 0, args, 3, extra.length);
    return Workloads.start("netveth", args);
  }

  /** A subnet/name index whose outside device does not exist yet. */
  private static int freeIndex() {
    int start = (int) (ProcessHandle.current().pid() % 240);
    for (int i = 0; i < 240; i++) {
      int k = 1 + (start + i) % 240;
      if (!Files.exists(Path.of("/sys/class/net/stv" + k))) {
        return k;
      }
    }
    throw new AssertionError("no free stvK device name");
  }

  private static Path sys(String dev, String attr) {
    return Path.of("/sys/class/net", dev, attr);
  }

  /** A TCP echo server on every address of the test's namespace, one thread per connection. */
  private static final class Echo implements AutoCloseable {
    private final ServerSocket server = new ServerSocket(0);
    private final Thread acceptor;

    Echo() throws IOException {
      acceptor = new Thread(this::serve, "veth-echo");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    int port() {
      return server.getLocalPort();
    }

    private void serve() {
      while (!server.isClosed()) {
        try {
          Socket c = server.accept();
          Thread t =
              new Thread(
                  () -> {
                    try (c;
                        InputStream in = c.getInputStream();
                        OutputStream out = c.getOutputStream()) {
                      c.setSoTimeout(10_000);
                      int b;
                      while ((b = in.read()) >= 0) {
                        out.write(b);
                        out.flush();
                      }
                    } catch (IOException e) {
                      // the peer went away: nothing to echo
                    }
                  },
                  "veth-echo-conn");
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return; // closed
        }
      }
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }
}
