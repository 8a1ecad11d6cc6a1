package dev.stasis.testing;

import dev.stasis.storage.S3Config;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real S3 server for tests: S3Proxy 4.1.0 with its filesystem backend, run as its own process
 * (its fat jar would clash with minio's dependencies on our classpath) on 127.0.0.1 and a random
 * port, logging at INFO. Buckets are directories under {@link #dataDir()}, objects are files, so a
 * test can corrupt or inspect what is stored. {@link #stop()} and {@link #restart()} simulate the
 * service going away and coming back with the same data.
 *
 * <p>The jar comes from the {@code stasis.s3proxy.jar} system property (set by node-agent's
 * failsafe configuration) or the local Maven repository.
 */
public final class S3Server implements AutoCloseable {
  public static final String ACCESS_KEY = "stasis-test-access";
  public static final String SECRET_KEY = "stasis-test-secret-key";

  /** A second tenant of {@link #startTwoTenants}: valid credentials, its own buckets only. */
  public static final String OTHER_ACCESS_KEY = "other-tenant-access";

  public static final String OTHER_SECRET_KEY = "other-tenant-secret-key";

  private final Path dir;
  private final Path data;
  private final int port;
  private final boolean tls;
  private Process process;

  private S3Server(Path dir, int port, boolean tls) {
    this.dir = dir;
    this.data = dir.resolve("data");
    this.port = port;
    this.tls = tls;
  }

  /** Starts a plain-HTTP server with no buckets. */
  public static S3Server start() throws IOException {
    return start(false);
  }

  /**
   * Starts an HTTPS server with a fresh self-signed certificate for 127.0.0.1, whose PEM {@link
   * #caBundle()} returns (clients must be given it: it is in no default trust store).
   */
  /** The domain under which {@link #startVirtualHost()} serves buckets as {@code bucket.DOMAIN}. */
  public static final String VIRTUAL_HOST = "s3.stasis.test";

  /**
   * A server that also accepts virtual-host style requests ({@code Host: bucket.s3.stasis.test}).
   * Nothing resolves that name: clients run with {@code -Djdk.net.hosts.file} mapping the bucket
   * hosts to 127.0.0.1 (and, on purpose, not the bare domain, so path-style requests fail).
   */
  public static S3Server startVirtualHost() throws IOException {
    return start(false, true);
  }

  /** A server that refuses every write (S3Proxy's read-only middleware: 501 NotImplemented). */
  public static S3Server startReadOnly() throws IOException {
    return start(false, false, true);
  }

  /**
   * A server with two tenants (S3Proxy's bucket locators): buckets named {@code tenant-*} belong to
   * {@link #ACCESS_KEY}, buckets named {@code other-*} to {@link #OTHER_ACCESS_KEY}. Each tenant's
   * credentials are valid, and refused (403) on the other's buckets.
   */
  public static S3Server startTwoTenants() throws IOException {
    return start(false, false, false, true);
  }

  public static S3Server startTls() throws IOException {
    return start(true);
  }

  private static S3Server start(boolean tls) throws IOException {
    return start(tls, false, false);
  }

  private static S3Server start(boolean tls, boolean virtualHost) throws IOException {
    return start(tls, virtualHost, false);
  }

  private static S3Server start(boolean tls, boolean virtualHost, boolean readOnly)
      throws IOException {
    return start(tls, virtualHost, readOnly, false);
  }

  private static S3Server start(
      boolean tls, boolean virtualHost, boolean readOnly, boolean twoTenants) throws IOException {
    Path dir = Files.createTempDirectory("stasis-s3-");
    Files.createDirectories(dir.resolve("data"));
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    S3Server server = new S3Server(dir, port, tls);
    String endpoint;
    if (tls) {
      Path ks = dir.resolve("keystore.p12");
      String keytool = Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
      run(
          keytool,
          "-genkeypair",
          "-alias",
          "s3",
          "-keyalg",
          "RSA",
          "-keysize",
          "2048",
          "-validity",
          "2",
          "-dname",
          "CN=127.0.0.1",
          "-ext",
          "SAN=ip:127.0.0.1",
          "-keystore",
          ks.toString(),
          "-storetype",
          "PKCS12",
          "-storepass",
          "stasis-test",
          "-keypass",
          "stasis-test");
      run(
          keytool,
          "-exportcert",
          "-rfc",
          "-alias",
          "s3",
          "-keystore",
          ks.toString(),
          "-storetype",
          "PKCS12",
          "-storepass",
          "stasis-test",
          "-file",
          dir.resolve("ca.pem").toString());
      endpoint =
          String.join(
              "\n",
              "s3proxy.secure-endpoint=https://127.0.0.1:" + port,
              "s3proxy.keystore-path=" + ks,
              "s3proxy.keystore-password=stasis-test");
    } else {
      endpoint = "s3proxy.endpoint=http://127.0.0.1:" + port;
    }
    Files.writeString(
        dir.resolve("s3proxy.properties"),
        String.join(
            "\n",
            endpoint,
            "s3proxy.authorization=aws-v2-or-v4",
            "s3proxy.identity=" + ACCESS_KEY,
            "s3proxy.credential=" + SECRET_KEY,
            "jclouds.provider=filesystem",
            "jclouds.filesystem.basedir=" + dir.resolve("data"),
            virtualHost ? "s3proxy.virtual-host=" + VIRTUAL_HOST : "",
            readOnly ? "s3proxy.read-only-blobstore=true" : "",
            twoTenants ? "s3proxy.bucket-locator.1=tenant-*" : "",
            ""));
    if (twoTenants) {
      // S3Proxy takes one properties file per tenant; everything but identity, credential and
      // bucket locator must be the same.
      Files.writeString(
          dir.resolve("other.properties"),
          String.join(
              "\n",
              endpoint,
              "s3proxy.authorization=aws-v2-or-v4",
              "s3proxy.identity=" + OTHER_ACCESS_KEY,
              "s3proxy.credential=" + OTHER_SECRET_KEY,
              "s3proxy.bucket-locator.1=other-*",
              "jclouds.provider=filesystem",
              "jclouds.filesystem.basedir=" + dir.resolve("data"),
              ""));
    }
    Files.writeString(
        dir.resolve("logback.xml"),
        "<configuration><appender name=\"F\" class=\"ch.qos.logback.core.FileAppender\">"
            + "<file>"
            + dir.resolve("s3proxy.log")
            + "</file><encoder><pattern>%d %level %logger{20} %msg%n"
            + "</pattern></encoder></appender><root level=\"INFO\"><appender-ref ref=\"F\"/></root>"
            + "</configuration>");
    server.launch();
    return server;
  }

  static Path jar() {
    String p = System.getProperty("stasis.s3proxy.jar");
    if (p != null && Files.isRegularFile(Path.of(p))) {
      return Path.of(p);
    }
    Path m2 =
        Path.of(
            System.getProperty("user.home"),
            ".m2/repository/org/gaul/s3proxy/4.1.0/s3proxy-4.1.0-jar-with-dependencies.jar");
    if (Files.isRegularFile(m2)) {
      return m2;
    }
    throw new IllegalStateException(
        "S3Proxy jar not found: run through 'mvn verify' (it resolves org.gaul:s3proxy:4.1.0:jar-with-dependencies)");
  }

  private void launch() throws IOException {
    List<String> cmd =
        List.of(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Dlogback.configurationFile=" + dir.resolve("logback.xml"),
            "-jar",
            jar().toString(),
            "--properties",
            dir.resolve("s3proxy.properties").toString());
    if (Files.exists(dir.resolve("other.properties"))) {
      cmd = new java.util.ArrayList<>(cmd);
      cmd.add("--properties");
      cmd.add(dir.resolve("other.properties").toString());
    }
    process =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("s3proxy.out").toFile()))
            .start();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IOException(
            "S3Proxy exited at start: " + Files.readString(dir.resolve("s3proxy.out")));
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
        return;
      } catch (IOException e) {
        try {
          Thread.sleep(50);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted", ie);
        }
      }
    }
    throw new IOException("S3Proxy did not listen on port " + port + " within 30 s");
  }

  private static void run(String... cmd) throws IOException {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes());
      if (p.waitFor() != 0) {
        throw new IOException(cmd[0] + " failed: " + out);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
  }

  /** The PEM certificate a client must trust to talk to a {@link #startTls()} server. */
  public Path caBundle() {
    return dir.resolve("ca.pem");
  }

  /** Creates a bucket (a directory of the filesystem backend). */
  public S3Server bucket(String name) throws IOException {
    Files.createDirectories(data.resolve(name));
    return this;
  }

  public String endpoint() {
    return (tls ? "https" : "http") + "://127.0.0.1:" + port;
  }

  public int port() {
    return port;
  }

  public Path dataDir() {
    return data;
  }

  /** Client settings for this server: path style, its credentials, fast bounded retries. */
  public S3Config config() {
    return config(ACCESS_KEY, SECRET_KEY);
  }

  /** As {@link #config()}, with other credentials (another tenant's, or wrong ones). */
  public S3Config config(String accessKey, String secretKey) {
    return new S3Config(
        endpoint(), "us-east-1", false, tls ? caBundle() : null, accessKey, secretKey, 3, 100);
  }

  /** Environment for a CLI subprocess talking to this server. */
  public Map<String, String> env() {
    return Map.of(
        "AWS_ACCESS_KEY_ID",
        ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY",
        SECRET_KEY,
        S3Config.ENDPOINT_ENV,
        endpoint());
  }

  /** Kills the server (as a crash would); the data stays. */
  public void stop() {
    if (process != null && process.isAlive()) {
      try {
        resume(); // a paused JVM would not die of anything but SIGKILL; be sure it can
      } catch (RuntimeException e) {
        // best effort
      }
      process.destroyForcibly();
      try {
        process.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Stops the server's process with SIGSTOP: its sockets stay open and connections are accepted by
   * the kernel, but nothing is ever answered (a stalled service, not a dead one). {@link #resume}
   * continues it.
   */
  public void pause() {
    signal("STOP");
  }

  /** Continues a {@link #pause}d server (SIGCONT). */
  public void resume() {
    signal("CONT");
  }

  private void signal(String sig) {
    if (process == null || !process.isAlive()) {
      throw new IllegalStateException("S3Proxy is not running");
    }
    Exec.ok(
        java.time.Duration.ofSeconds(10), List.of("kill", "-" + sig, Long.toString(process.pid())));
  }

  /** Starts the server again on the same port with the same data. */
  public void restart() throws IOException {
    stop();
    launch();
  }

  /** Bytes stored under the data directory (objects, parts and upload stubs alike). */
  public long storedBytes() {
    try (Stream<Path> s = Files.walk(data)) {
      return s.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    } catch (IOException | UncheckedIOException e) {
      return -1;
    }
  }

  @Override
  public void close() {
    stop();
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // temp dir: best effort
    }
  }
}
