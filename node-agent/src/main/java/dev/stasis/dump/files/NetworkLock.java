package dev.stasis.dump.files;

import static java.util.stream.Collectors.joining;

import dev.stasis.dump.DumpException;
import dev.stasis.dump.ns.InNamespace;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
 *
 * <p>A connection in another network namespace than the agent's is locked with that whole namespace
 * ({@link Namespace}), as CRIU does when the dump takes the namespace along.
 */
final class NetworkLock {
  private static final String MARK = "0xC114";

  /** Set for a hold on a namespace's lock; the connection fields are unused then. */
  private final Namespace namespace;

  private final boolean v6;
  private final String local;
  private final int localPort;
  private final String remote;
  private final int remotePort;
  private final String what;

  private NetworkLock(Namespace namespace, String what) {
    this.namespace = namespace;
    this.v6 = false;
    this.local = null;
    this.localPort = 0;
    this.remote = null;
    this.remotePort = 0;
    this.what = what;
  }

  private NetworkLock(byte[] src, int srcPort, byte[] dst, int dstPort, String what) {
    this.namespace = null;
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

  /**
   * Deletes both rules (each tried even if the other fails); for a namespace's connection, drops
   * its hold, and the last one unlocks the namespace.
   */
  void unlock() throws DumpException {
    if (namespace != null) {
      namespace.drop(what);
      return;
    }
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
    String failure = run(cmd, null);
    if (failure == null) {
      return;
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

  /** Runs {@code cmd} with {@code stdin} (null: none); null if it succeeded, else why not. */
  static String run(List<String> cmd, String stdin) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      try (var in = p.getOutputStream()) {
        if (stdin != null) {
          in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
      }
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return "timed out";
      }
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      if (p.exitValue() == 0) {
        return null;
      }
      // iptables-restore heads a failure with its version line and gives the reason on the
      // next one: all non-blank lines, joined, keep the reason in the one-line error.
      String why = out.lines().map(String::strip).filter(l -> !l.isEmpty()).collect(joining(" "));
      return "exit " + p.exitValue() + (why.isEmpty() ? "" : ": " + why);
    } catch (IOException e) {
      return e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  /**
   * CRIU's lock of a whole network namespace, which it takes when the dump includes the namespace
   * (criu/net.c network_lock_internal): a filter chain CRIU that accepts packets with the mark
   * 0xC114 and drops all others, jumped to first from INPUT and OUTPUT, for IPv4 and IPv6, loaded
   * with {@code iptables-restore -w --noflush} run inside the namespace. Taken on the frozen tree,
   * before the namespace's rules are read for the images, so the images carry the chain: the
   * judge's restore makes the namespace with it and deletes it (network_unlock) once every
   * connection is back, as after its own dump. Per-connection rules would instead be restored and
   * never deleted (CRIU deletes those only for connections of its own namespace).
   *
   * <p>Held by every connection of the namespace; the last one to let go (left running, failed
   * dump) deletes the chain again: the jumps, then the chain. In kill mode it stays in the
   * namespace, which goes with its last process. If the agent dies in between, the chain stays and
   * the namespace's traffic stays blocked (in a namespace without processes it goes with it) until
   * the next dump of the namespace takes the lock over (it deletes the leftover first), or {@code
   * iptables -D INPUT -j CRIU; iptables -D OUTPUT -j CRIU; iptables -X CRIU} (and ip6tables) inside
   * the namespace undo it.
   */
  static final class Namespace {
    private static final String LOCK =
        // -N, not ":CRIU": a chain already there fails the lock instead of gaining a second pair
        // of jumps, which the judge's unlock (one -D each, then -X) would leave blocked
        "*filter\n-N CRIU\n-I INPUT -j CRIU\n-I OUTPUT -j CRIU\n"
            + "-A CRIU -m mark --mark "
            + MARK
            + " -j ACCEPT\n-A CRIU -j DROP\nCOMMIT\n";
    private static final String UNJUMP =
        "*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\nCOMMIT\n";
    private static final String DELETE = "*filter\n:CRIU - [0:0]\n-X CRIU\nCOMMIT\n";

    private final int pid;
    // like CRIU (kdat.ipv6), IPv6 only where the kernel has it: ip6tables-restore fails otherwise
    private final boolean ipv6;
    private int holders;

    /** The lock of PID's network namespace, not taken until {@link #hold}. */
    Namespace(int pid) {
      this.pid = pid;
      this.ipv6 = Files.exists(Path.of("/proc/" + pid + "/net/if_inet6"));
    }

    /** A hold on the lock for the connection {@code what}; the first one takes the lock. */
    NetworkLock hold(String what) throws DumpException {
      if (holders == 0) {
        try {
          lock(false, what);
          if (ipv6) {
            lock(true, what);
          }
        } catch (DumpException e) {
          unlockQuietly(what);
          throw e;
        }
      }
      holders++;
      return new NetworkLock(this, what);
    }

    /**
     * Loads the lock for one family. Where it fails, a chain left by an earlier agent that died
     * holding the lock (or by hand) may be in the way: it is deleted with its jumps and the lock
     * loaded once more; the first failure is the one reported if that does not help.
     */
    private void lock(boolean v6, String what) throws DumpException {
      try {
        restore(v6, LOCK, "locking", what);
      } catch (DumpException e) {
        if (unlock(v6, what) != null) {
          throw e;
        }
        try {
          restore(v6, LOCK, "locking", what);
        } catch (DumpException again) {
          throw e;
        }
      }
    }

    private void drop(String what) throws DumpException {
      if (--holders == 0) {
        unlock(what);
      }
    }

    private void unlockQuietly(String what) {
      try {
        unlock(what);
      } catch (DumpException ignored) {
        // the lock's own failure is the one to report; what is left is whatever did not load
      }
    }

    /** Deletes the jumps, then the chain, for both families; each family tried. */
    private void unlock(String what) throws DumpException {
      DumpException first = null;
      for (boolean v6 : ipv6 ? new boolean[] {false, true} : new boolean[] {false}) {
        DumpException failed = unlock(v6, what);
        first = first == null ? failed : first;
      }
      if (first != null) {
        throw first;
      }
    }

    /**
     * One family's unlock; null if the chain is gone. A chain still jumped to after a pair of jumps
     * went has more of them (a leftover made by hand or by an older agent): they are deleted too, a
     * pair a round, so the namespace is not left blocked.
     */
    private DumpException unlock(boolean v6, String what) {
      DumpException first = null;
      for (int round = 0; round < 8; round++) {
        boolean unjumped = true;
        try {
          restore(v6, UNJUMP, "unlocking", what);
        } catch (DumpException e) {
          first = first == null ? e : first;
          unjumped = false;
        }
        try {
          restore(v6, DELETE, "unlocking", what);
          return null;
        } catch (DumpException e) {
          first = first == null ? e : first;
        }
        if (!unjumped) {
          break;
        }
      }
      return first;
    }

    private void restore(boolean v6, String rules, String doing, String what) throws DumpException {
      String tool = v6 ? "ip6tables-restore" : "iptables-restore";
      String failure;
      try {
        failure =
            InNamespace.call(
                pid,
                "net",
                InNamespace.CLONE_NEWNET,
                () -> run(List.of(tool, "-w", "--noflush"), rules));
      } catch (IOException e) {
        failure = e.getMessage();
      }
      if (failure != null) {
        throw new DumpException(
            what
                + ": "
                + doing
                + " its network namespace with "
                + tool
                + " failed ("
                + failure
                + ")");
      }
    }
  }

  private static String host(byte[] a) {
    try {
      return java.net.InetAddress.getByAddress(a).getHostAddress();
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }
}
