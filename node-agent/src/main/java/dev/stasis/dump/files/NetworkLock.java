package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Locks one TCP connection of the dump out of the network, as CRIU's iptables method does: two
 * filter rules drop every packet of the connection, arriving (INPUT, from the peer) and leaving
 * (OUTPUT, to the peer), unless it carries CRIU's mark 0xC114 (what a restore sends while it
 * rebuilds the connection). While locked, a peer outside the dump neither gets its packets into the
 * frozen connection (bytes it would take as delivered but which the images miss) nor a reset from
 * the killed end: it retransmits until the connection is restored.
 *
 * <p>The rules are CRIU's to the letter, because {@code criu restore} deletes exactly these for
 * every connection it restores (before it takes the sockets out of repair mode). In kill mode they
 * stay until then; when the target goes on (left running, failed dump) the agent deletes them. IPv6
 * connections go to ip6tables, IPv4-mapped ones to iptables with the IPv4 addresses.
 */
final class NetworkLock {
  private static final String MARK = "0xC114";

  private final boolean v6;
  private final String local;
  private final int localPort;
  private final String remote;
  private final int remotePort;
  private final String what;

  private NetworkLock(byte[] src, int srcPort, byte[] dst, int dstPort, String what) {
    byte[] s = InetSocket.unmapped(src);
    byte[] d = InetSocket.unmapped(dst);
    this.v6 = s.length == 16;
    this.local = host(s);
    this.localPort = srcPort;
    this.remote = host(d);
    this.remotePort = dstPort;
    this.what = what;
  }

  /** Locks the connection from {@code src:srcPort} to {@code dst:dstPort}; undone by unlock. */
  static NetworkLock lock(byte[] src, int srcPort, byte[] dst, int dstPort, String what)
      throws DumpException {
    NetworkLock l = new NetworkLock(src, srcPort, dst, dstPort, what);
    l.rule("-I", true);
    try {
      l.rule("-I", false);
    } catch (DumpException e) {
      try {
        l.rule("-D", true);
      } catch (DumpException ignored) {
        // the first failure is the one to report
      }
      throw e;
    }
    return l;
  }

  /** Deletes both rules (each tried even if the other fails). */
  void unlock() throws DumpException {
    DumpException first = null;
    for (boolean input : new boolean[] {true, false}) {
      try {
        rule("-D", input);
      } catch (DumpException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  /**
   * {@code iptables -w -t filter -I|-D INPUT|OUTPUT --protocol tcp -m mark ! --mark 0xC114 --source
   * S --sport SP --destination D --dport DP -j DROP}: for INPUT the source is the peer, for OUTPUT
   * this end.
   */
  private void rule(String op, boolean input) throws DumpException {
    List<String> cmd =
        new ArrayList<>(
            Arrays.asList(
                v6 ? "ip6tables" : "iptables",
                "-w",
                "-t",
                "filter",
                op,
                input ? "INPUT" : "OUTPUT",
                "--protocol",
                "tcp",
                "-m",
                "mark",
                "!",
                "--mark",
                MARK,
                "--source",
                input ? remote : local,
                "--sport",
                Integer.toString(input ? remotePort : localPort),
                "--destination",
                input ? local : remote,
                "--dport",
                Integer.toString(input ? localPort : remotePort),
                "-j",
                "DROP"));
    String failure;
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      p.getOutputStream().close();
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        failure = "timed out";
      } else {
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (p.exitValue() == 0) {
          return;
        }
        failure =
            "exit " + p.exitValue() + (out.isEmpty() ? "" : ": " + out.lines().findFirst().get());
      }
    } catch (IOException e) {
      failure = e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failure = "interrupted";
    }
    throw new DumpException(
        what
            + ": "
            + (op.equals("-I") ? "locking" : "unlocking")
            + " the connection with "
            + cmd.get(0)
            + " failed ("
            + failure
            + ")");
  }

  private static String host(byte[] a) {
    try {
      return java.net.InetAddress.getByAddress(a).getHostAddress();
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }
}
