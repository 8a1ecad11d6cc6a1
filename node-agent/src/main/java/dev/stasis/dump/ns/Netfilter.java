package dev.stasis.dump.ns;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.dump.DumpException;
import dev.stasis.linux.NfTables;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * The packet filter rules of a network namespace, in the form CRIU 4.2.1 writes and its restore
 * replays (facts from criu/net.c, a build with libnftables as the judge is):
 *
 * <ul>
 *   <li>iptables-ID.img, ip6tables-ID.img: the text of the <em>legacy</em> (x_tables) save tool.
 *       The restore pipes it into {@code iptables-restore -w} if that one is legacy, else {@code
 *       iptables-legacy-restore -w}. Only written when the namespace has legacy tables ({@code
 *       /proc/PID/net/ip_tables_names}); a missing image restores nothing.
 *   <li>nftables-ID.img: the text of {@code nft list ruleset}, which the restore runs as one
 *       libnftables command buffer. This holds every nf_tables table of every family, including the
 *       ones iptables with its nf_tables backend made.
 * </ul>
 *
 * The tools run in a child of a thread that joined the namespace ({@code setns}): a save is the
 * filter tool's own format, not a checkpoint tool. Whether there is anything to save is decided
 * without them (the proc files, nfnetlink), so a node that lacks a tool refuses the dump instead of
 * losing rules.
 *
 * <p>{@code nft list ruleset} is not always something {@code nft -f} turns back into the same
 * rules: a rule of iptables-nft that uses an x_tables extension (an {@code xt} expression: {@code
 * -m comment}, {@code -m owner}, {@code -j REJECT}...) prints as nft's translation or not at all.
 * So, before the freeze, such rules are refused by name, and the text is replayed with {@code nft
 * -f} in a scratch network namespace and listed again: unless the two listings are the same
 * (handles and counter values aside) the dump is refused. Inside the freeze the replay is skipped
 * when the ruleset is what the pre-freeze check already replayed.
 */
final class Netfilter {
  private Netfilter() {}

  private static final long TOOL_TIMEOUT_MS = 8_000;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Replays run so far (NetfilterReplayIT counts them). */
  static final java.util.concurrent.atomic.AtomicInteger replays =
      new java.util.concurrent.atomic.AtomicInteger();

  /**
   * Rulesets (text and normalised listing) whose replay listed back the same, the last few. The
   * namespace is read before the freeze and again inside it; when nothing changed in between, the
   * replay (two nft runs in a scratch namespace) is the same function of the same text and is not
   * done again while the tree is frozen.
   */
  private static final Map<String, Boolean> REPLAYED =
      new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
          return size() > 8;
        }
      };

  /** The texts to store; null where the namespace has nothing of that kind. */
  record Rules(String iptables, String ip6tables, String nftables) {}

  /** Reads (and checks) the namespace's rules; a one-line DumpException for what cannot go. */
  static Rules read(int pid) throws IOException {
    return new Rules(legacy(pid, false), legacy(pid, true), nftables(pid));
  }

  private static String legacy(int pid, boolean v6) throws IOException {
    String names;
    try {
      names =
          Files.readString(
                  Path.of("/proc/" + pid + "/net/" + (v6 ? "ip6" : "ip") + "_tables_names"))
              .strip();
    } catch (NoSuchFileException e) {
      return null; // no x_tables in this kernel
    }
    if (names.isEmpty()) {
      return null;
    }
    String what = v6 ? "ip6tables" : "iptables";
    String tool = legacySave(what);
    if (tool == null) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has legacy "
              + what
              + " tables ("
              + names.replace('\n', ' ')
              + ") but this node has no legacy "
              + what
              + "-save to dump them");
    }
    return InNamespace.call(
        pid, "net", InNamespace.CLONE_NEWNET, () -> run(List.of(tool), null, what + "-save"));
  }

  /** The save tool that reads x_tables: CRIU's choice, {@code X-save} unless it is nft-based. */
  private static String legacySave(String what) throws IOException {
    String plain = which(what + "-save");
    if (plain != null
        && !run(List.of(plain, "-V"), null, what + "-save -V").contains("nf_tables")) {
      return plain;
    }
    return which(what + "-legacy-save");
  }

  private static String nftables(int pid) throws IOException {
    List<NfTables.Table> tables =
        InNamespace.call(pid, "net", InNamespace.CLONE_NEWNET, NfTables::tables);
    if (tables.isEmpty()) {
      return null;
    }
    List<String> named = new ArrayList<>();
    for (NfTables.Table t : tables) {
      named.add(family(t.family()) + " " + t.name());
    }
    String nft = which("nft");
    if (nft == null) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has nftables tables ("
              + String.join(", ", named)
              + ") but this node has no nft to dump them");
    }
    String[] texts =
        InNamespace.call(
            pid,
            "net",
            InNamespace.CLONE_NEWNET,
            () ->
                new String[] {
                  run(List.of(nft, "list", "ruleset"), null, "nft list ruleset"),
                  run(List.of(nft, "-j", "list", "ruleset"), null, "nft -j list ruleset")
                });
    String text = texts[0];
    JsonNode listed = JSON.readTree(texts[1]);
    Set<String> xt = new LinkedHashSet<>();
    extensions(listed, xt);
    if (!xt.isEmpty()) {
      throw new DumpException(
          "PID "
              + pid
              + "'s network namespace has nftables rules with iptables extensions nft cannot"
              + " write back ("
              + String.join(", ", xt)
              + "): not supported yet");
    }
    JsonNode expected = normalised(listed);
    String key = text + "\n" + expected;
    synchronized (REPLAYED) {
      if (REPLAYED.containsKey(key)) {
        return text;
      }
    }
    replays.incrementAndGet();
    JsonNode replayed =
        JSON.readTree(
            InNamespace.inScratch(
                InNamespace.CLONE_NEWNET,
                "replaying a ruleset",
                2 * TOOL_TIMEOUT_MS + 1_000,
                () -> {
                  run(
                      List.of(nft, "-f", "-"),
                      text.getBytes(StandardCharsets.UTF_8),
                      "nft -f (replaying PID " + pid + "'s ruleset)");
                  return run(List.of(nft, "-j", "list", "ruleset"), null, "nft -j list ruleset");
                }));
    if (!expected.equals(normalised(replayed))) {
      throw new DumpException(
          "PID "
              + pid
              + "'s nftables ruleset ("
              + String.join(", ", named)
              + ") does not come back the same from 'nft list ruleset': not supported yet");
    }
    synchronized (REPLAYED) {
      REPLAYED.put(key, Boolean.TRUE);
    }
    return text;
  }

  /** Every {@code xt} expression of a JSON listing, as "match NAME" / "target NAME". */
  private static void extensions(JsonNode n, Set<String> out) {
    if (n.isObject()) {
      JsonNode x = n.get("xt");
      if (x != null && x.isObject()) {
        out.add("xt " + x.path("type").asText() + " " + x.path("name").asText());
      }
    }
    for (JsonNode c : n) {
      extensions(c, out);
    }
  }

  /**
   * A listing without what a replay cannot keep and need not: the metainfo header, object handles
   * (numbered afresh per table) and counter values (which the live namespace keeps changing).
   */
  static JsonNode normalised(JsonNode listing) {
    JsonNode copy = listing.deepCopy();
    ArrayNode all = (ArrayNode) copy.path("nftables");
    if (all.isMissingNode()) {
      return copy;
    }
    for (Iterator<JsonNode> it = all.iterator(); it.hasNext(); ) {
      if (it.next().has("metainfo")) {
        it.remove();
      }
    }
    strip(copy);
    return copy;
  }

  private static void strip(JsonNode n) {
    if (n instanceof ObjectNode o) {
      o.remove("handle");
      JsonNode counter = o.get("counter");
      if (counter instanceof ObjectNode c) {
        c.put("packets", 0);
        c.put("bytes", 0);
      }
    }
    for (JsonNode c : n) {
      strip(c);
    }
  }

  private static String family(int nfproto) {
    return switch (nfproto) {
      case 1 -> "inet";
      case 2 -> "ip";
      case 3 -> "arp";
      case 5 -> "netdev";
      case 7 -> "bridge";
      case 10 -> "ip6";
      default -> "family " + nfproto;
    };
  }

  /** The tool's absolute path: PATH, then the sbin directories a non-login PATH may lack. */
  static String which(String tool) {
    List<String> dirs = new ArrayList<>();
    String path = System.getenv("PATH");
    if (path != null) {
      dirs.addAll(List.of(path.split(":")));
    }
    dirs.addAll(List.of("/usr/sbin", "/sbin", "/usr/bin", "/bin"));
    for (String d : dirs) {
      if (d.isEmpty()) {
        continue;
      }
      Path p = Path.of(d, tool);
      if (Files.isRegularFile(p) && Files.isExecutable(p)) {
        return p.toString();
      }
    }
    return null;
  }

  /**
   * Runs a tool (in the calling thread's namespaces: the child is spawned from this thread),
   * bounded; returns its standard output or throws with the first line of its error.
   */
  static String run(List<String> cmd, byte[] stdin, String what) throws IOException {
    Process p = new ProcessBuilder(cmd).start();
    CompletableFuture<byte[]> out = drain(p.getInputStream());
    CompletableFuture<byte[]> err = drain(p.getErrorStream());
    try (OutputStream in = p.getOutputStream()) {
      if (stdin != null) {
        in.write(stdin);
      }
    }
    try {
      if (!p.waitFor(TOOL_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        throw new DumpException(what + " took over " + TOOL_TIMEOUT_MS + " ms");
      }
      String stdout = new String(out.get(), StandardCharsets.UTF_8);
      if (p.exitValue() != 0) {
        String e = new String(err.get(), StandardCharsets.UTF_8).strip();
        throw new DumpException(
            what
                + " failed (exit "
                + p.exitValue()
                + (e.isEmpty() ? "" : ": " + e.lines().findFirst().get())
                + ")");
      }
      return stdout;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new DumpException("interrupted while running " + what);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new DumpException("cannot read the output of " + what + ": " + e.getCause(), e);
    }
  }

  private static CompletableFuture<byte[]> drain(InputStream s) {
    CompletableFuture<byte[]> f = new CompletableFuture<>();
    Thread t =
        new Thread(
            () -> {
              try (s) {
                f.complete(s.readAllBytes());
              } catch (IOException e) {
                f.completeExceptionally(e);
              }
            },
            "stasis-tool-output");
    t.setDaemon(true);
    t.start();
    return f;
  }
}
