package dev.stasis.dump;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.testing.CriuJudge;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Programs nobody here wrote, from Debian packages, as a user would checkpoint them: each is
 * started, given state over its own protocol (tmux: its client on a private socket), dumped with
 * {@code --leave-running} (it must go on serving with no trace of the dump: not traced, no parasite
 * mapping or descriptor, the same descriptors and blocked masks), then dumped in kill mode,
 * restored by the judge, and asked for the state it was given.
 */
class RealProgramsIT {

  /** memcached: threads, epoll, eventfds, pipes, a TCP listener; a stored key is the state. */
  @Test
  void memcachedKeepsItsKeys() throws Exception {
    int port = freePort();
    try (Server s =
        Server.start(
            "memcached",
            port,
            List.of(
                "memcached",
                "-u",
                "nobody",
                "-l",
                "127.0.0.1",
                "-p",
                "" + port,
                "-U",
                "0",
                "-t",
                "2"))) {
      assertEquals("STORED", s.memcached("set k 0 0 5\r\nhello\r\n").strip());
      s.dumpLeavingRunning();
      assertTrue(s.memcached("get k\r\n").contains("hello"), "serves after --leave-running");
      assertEquals("STORED", s.memcached("set k2 0 0 3\r\nabc\r\n").strip());
      s.dumpKillAndRestore();
      String got = s.memcached("get k k2\r\n");
      assertTrue(got.contains("VALUE k 0 5\r\nhello") && got.contains("abc"), got);
    }
  }

  /** Node.js (libuv: epoll, eventfds, signal pipes, worker threads) serving HTTP. */
  @Test
  void nodeHttpServiceKeepsItsState() throws Exception {
    int port = freePort();
    Path dir = Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "node-");
    Path js = dir.resolve("srv.js");
    Files.writeString(
        js,
        "const http = require('http');\n"
            + "let hits = 0; let state = 'none';\n"
            + "http.createServer((req, res) => {\n"
            + "  if (req.url.startsWith('/set/')) state = req.url.substring(5);\n"
            + "  hits++; res.end(state + ' ' + hits);\n"
            + "}).listen("
            + port
            + ", '127.0.0.1');\n"
            + "setInterval(() => {}, 1000);\n");
    try (Server s = Server.start("node", port, List.of("node", js.toString()))) {
      assertEquals("s1 1", s.http("/set/s1"));
      s.dumpLeavingRunning();
      assertEquals("s1 2", s.http("/"), "serves after --leave-running");
      s.dumpKillAndRestore();
      assertEquals("s1 3", s.http("/"));
    }
  }

  /**
   * A JVM (22 threads, JIT code, GC heap) serving HTTP with the JDK's own server. The JVM's perf
   * data file is turned off: a JVM maps it shared from /tmp/hsperfdata_USER/PID, and every other
   * JVM starting on the host (the build's own, here) deletes the file of a PID that is not running,
   * so a killed JVM's file is gone before the restore needs it. In a container /tmp is its own.
   */
  @Test
  void jvmHttpServiceKeepsItsState() throws Exception {
    int port = freePort();
    Path dir = Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "jvm-");
    Path src = dir.resolve("Srv.java");
    Files.writeString(
        src,
        "import com.sun.net.httpserver.HttpServer;\n"
            + "import java.net.InetSocketAddress;\n"
            + "public class Srv {\n"
            + "  static int hits; static String state = \"none\";\n"
            + "  public static void main(String[] a) throws Exception {\n"
            + "    HttpServer s = HttpServer.create(new InetSocketAddress(\"127.0.0.1\", "
            + port
            + "), 0);\n"
            + "    s.createContext(\"/\", ex -> {\n"
            + "      String p = ex.getRequestURI().getPath();\n"
            + "      synchronized (Srv.class) {\n"
            + "        if (p.startsWith(\"/set/\")) state = p.substring(5);\n"
            + "        byte[] b = (state + \" \" + (++hits)).getBytes();\n"
            + "        ex.sendResponseHeaders(200, b.length); ex.getResponseBody().write(b);\n"
            + "      }\n"
            + "      ex.close();\n"
            + "    });\n"
            + "    s.start();\n"
            + "  }\n"
            + "}\n");
    try (Server s =
        Server.start(
            "jvm", port, List.of("java", "-XX:+PerfDisableSharedMem", "-Xmx64m", src.toString()))) {
      assertEquals("j1 1", s.http("/set/j1"));
      s.dumpLeavingRunning();
      assertEquals("j1 2", s.http("/"), "serves after --leave-running");
      s.dumpKillAndRestore();
      assertEquals("j1 3", s.http("/"));
    }
  }

  /**
   * PostgreSQL 15 (postmaster and its checkpointer, background writer, WAL writer and launchers: a
   * SysV segment, anonymous shared memory, a POSIX /dev/shm segment, TCP and unix listeners,
   * latches on epoll and signalfd), run as user postgres in an IPC namespace of its own, as in a
   * container: CRIU recreates SysV segments only there (in the host's it is refused). A table's
   * rows are the state; after the restore a new backend attaches the shared memory again, reads
   * them and writes one more.
   */
  @Test
  void postgresqlKeepsItsRows() throws Exception {
    int port = freePort();
    Path dir =
        Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "postgres-")
            .toAbsolutePath();
    Path data = dir.resolve("data");
    Path bin = postgresBin();
    List<String> asPostgres =
        List.of("setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups");
    dev.stasis.testing.Exec.ok(
        java.time.Duration.ofSeconds(10), List.of("chown", "postgres:", dir.toString()));
    List<String> initdb = new java.util.ArrayList<>(asPostgres);
    initdb.addAll(
        List.of(
            bin.resolve("initdb").toString(),
            "-D",
            data.toString(),
            "--auth=trust",
            "-U",
            "postgres",
            "--no-sync"));
    dev.stasis.testing.Exec.ok(java.time.Duration.ofSeconds(120), initdb);
    List<String> cmd = new java.util.ArrayList<>(List.of("unshare", "--ipc"));
    cmd.addAll(asPostgres);
    cmd.addAll(
        List.of(
            bin.resolve("postgres").toString(),
            "-D",
            data.toString(),
            "-k",
            dir.toString(),
            "-p",
            Integer.toString(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "autovacuum=off"));
    try (Server s = Server.start("postgres", port, cmd)) {
      assertEquals(
          "100",
          s.sql(
              "create table t(a int primary key, b text);"
                  + " insert into t select g, 'row' || g from generate_series(1, 100) g;"
                  + " select count(*) from t"));
      s.awaitNoBackends();
      s.dumpLeavingRunning();
      assertEquals("100|row99", s.sql("select count(*), max(b) from t"), "after --leave-running");
      assertEquals("101", s.sql("insert into t values (101, 'before'); select count(*) from t"));
      s.awaitNoBackends();
      s.dumpKillAndRestore();
      assertEquals("101|row99", s.sql("select count(*), max(b) from t"));
      assertEquals("102", s.sql("insert into t values (102, 'after'); select count(*) from t"));
    }
  }

  /** The newest PostgreSQL server installed from Debian's packages. */
  private static Path postgresBin() throws IOException {
    try (var versions = Files.list(Path.of("/usr/lib/postgresql"))) {
      return versions
          .map(v -> v.resolve("bin"))
          .filter(b -> Files.isExecutable(b.resolve("postgres")))
          .max(
              java.util.Comparator.comparing(
                  b -> Integer.parseInt(b.getParent().getFileName().toString())))
          .orElseThrow(() -> new IOException("no PostgreSQL server under /usr/lib/postgresql"));
    }
  }

  /**
   * tmux with a shell in a pane: the server (a daemon holding the pane's pty master, its listening
   * socket, pipes) and the pane's bash, which leads its own session with the pty as controlling
   * terminal. The shell is given a variable and a typed line it has not run yet; after the judge
   * restores the dumped tree, the pane still shows both, pressing Enter runs the typed line, and
   * the variable still has its value (tmux's own client protocol, on its private socket).
   */
  @Test
  void tmuxKeepsItsShell() throws Exception {
    Path dir =
        Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), "tmux-")
            .toAbsolutePath();
    Path sock = dir.resolve("sock");
    tmux(sock, "new-session", "-d", "-s", "t", "-x", "80", "-y", "24", "bash --norc --noprofile");
    int pid = Integer.parseInt(tmux(sock, "display-message", "-p", "#{pid}").strip());
    try (Server s = new Server("tmux", 0, pid, dir)) {
      awaitPane(sock, "#");
      tmux(sock, "send-keys", "-t", "t", "X=42; echo set $X", "Enter");
      awaitPane(sock, "set 42");
      tmux(sock, "send-keys", "-t", "t", "echo typed-before-the-dump");
      awaitPane(sock, "# echo typed-before-the-dump");

      s.dumpLeavingRunning();
      assertTrue(pane(sock).contains("# echo typed-before-the-dump"), "serves after the dump");

      Path images = dir.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), "stasis dump failed: " + r.stderr());
      for (int i = 0; i < 400 && Files.exists(Path.of("/proc/" + pid)); i++) {
        Thread.sleep(25);
      }
      assertFalse(Files.exists(Path.of("/proc/" + pid)), "tmux was killed and reaped");
      CriuJudge.restore(images);

      String restored = pane(sock);
      assertTrue(
          restored.contains("set 42") && restored.contains("# echo typed-before-the-dump"),
          "the pane as it was: " + restored);
      tmux(sock, "send-keys", "-t", "t", "Enter");
      awaitPane(sock, "\ntyped-before-the-dump\n");
      tmux(sock, "send-keys", "-t", "t", "echo again $X", "Enter");
      awaitPane(sock, "\nagain 42\n");
    }
  }

  /** Runs the tmux client on the private socket, with nothing of the test's environment. */
  private static String tmux(Path sock, String... args) throws Exception {
    List<String> cmd =
        new java.util.ArrayList<>(
            List.of(
                "env",
                "-i",
                "PATH=/usr/bin:/bin",
                "TERM=xterm",
                "HOME=" + sock.getParent(),
                "tmux",
                "-S",
                sock.toString()));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(30, TimeUnit.SECONDS), "tmux " + args[0] + " did not end");
    assertEquals(0, p.exitValue(), "tmux " + String.join(" ", args) + ": " + out);
    return out;
  }

  private static String pane(Path sock) throws Exception {
    return tmux(sock, "capture-pane", "-p", "-t", "t");
  }

  private static void awaitPane(Path sock, String text) throws Exception {
    String shown = pane(sock);
    for (int i = 0; i < 200 && !shown.contains(text); i++) {
      Thread.sleep(50);
      shown = pane(sock);
    }
    assertTrue(shown.contains(text), "the pane shows '" + text + "': " + shown);
  }

  static int freePort() throws IOException {
    try (ServerSocket ss = new ServerSocket()) {
      ss.bind(new InetSocketAddress("127.0.0.1", 0));
      return ss.getLocalPort();
    }
  }

  /** A program started in its own session with stdio on /dev/null and a log file. */
  static final class Server implements AutoCloseable {
    final String name;
    final int port;
    final int pid;
    final Path state;

    /** The process as the workloads' handle: kill on close, awaitGone, the leave-running dump. */
    private final Workloads.Running proc;

    private Server(String name, int port, int pid, Path state) {
      this.name = name;
      this.port = port;
      this.pid = pid;
      this.state = state;
      this.proc = new Workloads.Running(pid, state);
    }

    static Server start(String name, int port, List<String> cmd) throws Exception {
      Path state =
          Files.createTempDirectory(Files.createDirectories(Path.of("target/it")), name + "-")
              .toAbsolutePath();
      Path log = state.resolve("log");
      // sh -c SCRIPT sh ARGS...: the program and its arguments arrive as "$@", never re-parsed
      ProcessBuilder pb =
          new ProcessBuilder(
              "sh", "-c", "setsid \"$@\" </dev/null >'" + log + "' 2>&1 & echo $!", "sh");
      pb.command().addAll(cmd);
      Process q = pb.start();
      String out = new String(q.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).strip();
      q.waitFor(10, TimeUnit.SECONDS);
      int pid = Integer.parseInt(out);
      Server s = new Server(name, port, pid, state);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (!s.listening()) {
        if (System.nanoTime() > deadline || !Files.exists(Path.of("/proc/" + pid))) {
          s.close();
          throw new IOException(name + " did not start listening: " + Files.readString(log));
        }
        Thread.sleep(50);
      }
      return s;
    }

    private boolean listening() {
      try (Socket c = new Socket()) {
        c.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return true;
      } catch (IOException e) {
        return false;
      }
    }

    /** One memcached text-protocol request; returns the reply up to END or the first line. */
    String memcached(String request) throws IOException {
      try (Socket c = new Socket()) {
        c.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        c.setSoTimeout(10_000);
        OutputStream o = c.getOutputStream();
        o.write(request.getBytes(StandardCharsets.US_ASCII));
        o.flush();
        InputStream in = c.getInputStream();
        StringBuilder b = new StringBuilder();
        boolean multi = request.startsWith("get");
        while (true) {
          int ch = in.read();
          if (ch < 0) {
            break;
          }
          b.append((char) ch);
          String s = b.toString();
          if (multi ? s.endsWith("END\r\n") : s.endsWith("\r\n")) {
            break;
          }
        }
        return b.toString();
      }
    }

    /** {@code psql -qtA -c sql} over TCP as user postgres: the last query's rows, stripped. */
    String sql(String sql) {
      return dev.stasis.testing.Exec.ok(
              java.time.Duration.ofSeconds(30),
              List.of(
                  "psql",
                  "-h",
                  "127.0.0.1",
                  "-p",
                  Integer.toString(port),
                  "-U",
                  "postgres",
                  "-qtA",
                  "-c",
                  sql))
          .strip();
    }

    /**
     * Waits until no backend of a finished client is still exiting: a child that dies while the
     * tree is seized would be a zombie in it.
     */
    void awaitNoBackends() throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (true) {
        boolean backend = false;
        for (ProcessHandle c : ProcessHandle.of(pid).orElseThrow().children().toList()) {
          String cmdline;
          try {
            cmdline = Files.readString(Path.of("/proc/" + c.pid() + "/cmdline"));
          } catch (IOException e) {
            continue;
          }
          backend |=
              cmdline.contains("127.0.0.1(") || cmdline.contains("[local]") || cmdline.isEmpty();
        }
        if (!backend) {
          return;
        }
        if (System.nanoTime() > deadline) {
          throw new AssertionError("a backend of " + name + " is still there");
        }
        Thread.sleep(50);
      }
    }

    /** GET {@code path}; the response body. */
    String http(String path) throws IOException {
      try (Socket c = new Socket()) {
        c.connect(new InetSocketAddress("127.0.0.1", port), 5000);
        c.setSoTimeout(10_000);
        c.getOutputStream()
            .write(
                ("GET " + path + " HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
        String r = new String(c.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        int body = r.indexOf("\r\n\r\n");
        if (!r.startsWith("HTTP/1.") || body < 0) {
          throw new IOException(name + " answered " + r);
        }
        return r.substring(body + 4);
      }
    }

    /** {@code --leave-running}: the program must not notice. */
    void dumpLeavingRunning() throws Exception {
      Trace before = Trace.settled(pid);
      Path images = state.resolve("live");
      proc.dumpLeavingRunning(images);
      assertTrue(Files.exists(images.resolve("pstree.img")), "images were committed");
      Trace after = Trace.settled(pid);
      assertEquals("0", after.tracer, name + " is no longer traced");
      assertFalse(after.maps.contains("stasis"), name + ": no parasite mapping left");
      assertEquals(before.fds, after.fds, name + ": the same descriptors, none added or lost");
      assertEquals(before.sigBlk, after.sigBlk, name + ": every thread's blocked mask");
    }

    /** Kill mode, then the judge restores it under the same PID. */
    void dumpKillAndRestore() throws Exception {
      Path images = state.resolve("images");
      Workloads.Cli r =
          Workloads.stasis(
              "dump", "--pid", Integer.toString(pid), "--images-dir", images.toString());
      assertEquals(0, r.exit(), name + ": stasis dump failed: " + r.stderr());
      proc.awaitGone(); // killed and reaped
      assertFalse(listening(), name + " no longer serves");
      CriuJudge.restore(images);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
      while (!listening() && System.nanoTime() < deadline) {
        Thread.sleep(50);
      }
      assertTrue(Files.exists(Path.of("/proc/" + pid)), name + " restored under its PID");
    }

    @Override
    public void close() throws Exception {
      proc.close();
    }
  }

  /** What a dump must leave as it was (the parts an idle server does not change by itself). */
  record Trace(String tracer, String maps, Map<String, String> fds, Map<Integer, String> sigBlk) {
    /**
     * Once the descriptors stop changing: a server closes the socket of the test's last request on
     * its own time, after the test has read the answer.
     */
    static Trace settled(int pid) throws IOException, InterruptedException {
      Trace t = of(pid);
      for (int i = 0; i < 50; i++) {
        Thread.sleep(100);
        Trace u = of(pid);
        if (u.fds.equals(t.fds)) {
          return u;
        }
        t = u;
      }
      return t;
    }

    static Trace of(int pid) throws IOException {
      Map<String, String> fds = new TreeMap<>();
      try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of("/proc/" + pid + "/fd"))) {
        for (Path f : ds) {
          try {
            fds.put(f.getFileName().toString(), Files.readSymbolicLink(f).toString());
          } catch (java.nio.file.NoSuchFileException e) {
            // closed between the listing and the read (the socket of the test's last request):
            // settled() reads again until two readings agree
          }
        }
      }
      String tracer = "?";
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("TracerPid:")) {
          tracer = line.substring(10).strip();
        }
      }
      return new Trace(
          tracer,
          Files.readString(Path.of("/proc/" + pid + "/maps")),
          fds,
          LeaveRunningIT.Snapshot.sigBlk(pid));
    }
  }
}
