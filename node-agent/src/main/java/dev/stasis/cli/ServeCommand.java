package dev.stasis.cli;

import dev.stasis.agent.ProcessDumper;
import dev.stasis.dump.LiveCopy;
import dev.stasis.images.DirectoryImageSink;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Hidden, for benchmarks: a long-lived JVM that runs dumps the way the node agent runs them, driven
 * from a local Unix socket instead of the API server, so that the frozen time of a dump in a warm
 * agent can be measured without Kubernetes. Each request is one line, {@code dump PID DIR
 * [leave-running|live|precopy]}; the dump runs through {@link ProcessDumper#ENGINE} (the agent's
 * seam: no freeze deadline of the engine's own) on a thread of its own, as {@code PodDump} starts
 * one per container, into a directory sink. {@code live} is a leave-running dump with live copy, as
 * {@code PodDump} takes it: {@link ProcessDumper#startLive} while the process runs, then the dump
 * that freezes for what changed; its timings carry {@code live_setup_frozen_ms} (the tracking's own
 * short freeze) next to {@code frozen_ms} (the final one), and {@code live_copy=0} with {@code
 * notice=1} when live copy was not possible. {@code precopy} is a kill-mode dump as a kill-mode pod
 * checkpoint takes it: the same live copy, stored as the set's parent ({@link
 * LiveCopy#writeParent}) while the process runs, then the freeze that writes only what changed
 * since, and the kill. The answer is one line: {@code ok} and the engine's timings as {@code
 * name=ms} pairs, or {@code error} and the one-line reason. One request at a time (the agent's
 * ptrace work per dump is on one thread; a bench wants them serial anyway).
 *
 * <p>The socket is created mode 0600 (root only: whoever may write to it may dump any process).
 */
@Command(
    name = "serve",
    hidden = true,
    description = "Benchmark endpoint: run dumps in one resident JVM, as the node agent does.")
public final class ServeCommand implements Callable<Integer> {

  @Option(names = "--socket", required = true, description = "Unix socket to listen on")
  Path socket;

  @Option(
      names = "--no-warm-up",
      description = "skip the agent's start-up warm-up (to measure a cold first dump)")
  boolean noWarmUp;

  @Override
  public Integer call() throws Exception {
    dev.stasis.compel.Leftovers.sweep(System.err, true);
    if (!noWarmUp) {
      System.err.println("serve: " + dev.stasis.agent.WarmUp.run());
    }
    Files.deleteIfExists(socket);
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(socket));
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
      System.err.println("serve: listening on " + socket);
      while (true) {
        try (SocketChannel c = server.accept()) {
          BufferedReader in =
              new BufferedReader(
                  new InputStreamReader(Channels.newInputStream(c), StandardCharsets.UTF_8));
          PrintWriter out =
              new PrintWriter(
                  new OutputStreamWriter(Channels.newOutputStream(c), StandardCharsets.UTF_8));
          String line = in.readLine();
          if (line == null) {
            continue;
          }
          if (line.equals("quit")) {
            out.println("ok bye");
            out.flush();
            return 0;
          }
          out.println(answer(line));
          out.flush();
        }
      }
    } finally {
      Files.deleteIfExists(socket);
    }
  }

  /** Runs one request on a thread of its own; the answer line. */
  static String answer(String line) throws InterruptedException {
    String[] w = line.trim().split("\\s+");
    if (w.length < 3
        || w.length > 4
        || !w[0].equals("dump")
        || !w[1].matches("[0-9]{1,9}")
        || (w.length == 4 && !List.of("leave-running", "live", "precopy").contains(w[3]))) {
      return "error bad request (want: dump PID DIR [leave-running|live|precopy]): "
          + Main.oneLine(line);
    }
    int pid = Integer.parseInt(w[1]);
    Path dir = Path.of(w[2]);
    boolean precopy = w.length == 4 && w[3].equals("precopy");
    boolean leave = w.length == 4 && !precopy;
    boolean live = precopy || (leave && w[3].equals("live"));
    String[] result = new String[1];
    Thread t =
        new Thread(
            () -> {
              try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
                ProcessDumper.Outcome o;
                List<String> notices = new ArrayList<>();
                if (live) {
                  LiveCopy copy =
                      ProcessDumper.ENGINE.startLive(pid, null, notices::add, () -> false);
                  if (precopy && copy != null) {
                    try {
                      copy.writeParent(sink);
                    } catch (Exception e) {
                      copy.close(); // the tracking ends with it; the process was never frozen
                      throw e;
                    }
                  }
                  o = ProcessDumper.ENGINE.dump(pid, leave, sink, null, null, copy);
                } else {
                  o = ProcessDumper.ENGINE.dump(pid, leave, sink, null, null);
                }
                StringBuilder b = new StringBuilder("ok");
                if (live) {
                  b.append(" live_copy=").append(o.timings().containsKey("live_rounds") ? 1 : 0);
                  b.append(" notice=").append(notices.size());
                  notices.forEach(n -> System.err.println("serve: " + pid + ": " + n));
                }
                new TreeMap<>(o.timings())
                    .forEach((k, v) -> b.append(' ').append(k).append('=').append(v));
                result[0] = b.toString();
              } catch (Exception e) {
                result[0] = "error " + Main.oneLine(e.getMessage());
              } catch (Throwable e) {
                // an Error (a missing native symbol, out of memory) must still answer one line,
                // not "null"
                result[0] = "error dump engine crashed: " + Main.oneLine(e.toString());
              }
            },
            "stasis-dump-" + pid);
    t.start();
    t.join();
    return result[0];
  }

  /** For tests: the timings of an ok answer. */
  static Map<String, Long> timings(String answer) {
    Map<String, Long> m = new TreeMap<>();
    for (String kv : answer.split(" ")) {
      int eq = kv.indexOf('=');
      if (eq > 0) {
        m.put(kv.substring(0, eq), Long.parseLong(kv.substring(eq + 1)));
      }
    }
    return m;
  }
}
