package dev.stasis.operator;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.agent.CgroupFreezer;
import dev.stasis.agent.ContainerProcesses;
import dev.stasis.agent.NodeAgent;
import dev.stasis.agent.ProcessDumper;
import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationPhase;
import dev.stasis.crds.MigrationSpec;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import dev.stasis.images.ImageSink;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StoreOptions;
import dev.stasis.testing.Crit;
import dev.stasis.testing.RuncContainer;
import dev.stasis.testing.S3Server;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import io.quarkus.test.kubernetes.client.KubernetesTestServer;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.io.IOException;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Kubernetes path end to end: the fabric8 mock API server (CRUD) as the cluster, the real
 * operator (Quarkus), the real node agent in-process with the real dump engine, a real runc
 * container, and a real S3 server (S3Proxy). Upstream crit judges the stored images.
 */
@QuarkusTest
// The CRD is installed by the test's own client (setUp): a setup-phase client's requests cannot be
// told apart from the operator's in the RBAC check.
@WithKubernetesTestServer(crud = true, setup = LeaseAccessSetup.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CheckpointEndToEndIT {
  static final String NODE = "node-e2e";
  static final String AGENT_UA = "stasis-node-agent";

  @KubernetesTestServer KubernetesServer server;
  @Inject KubernetesClient operatorClient;
  @TempDir static Path work;

  static KubernetesClient test;
  static KubernetesClient agentClient;
  static NodeAgent agent;
  static S3Server s3;

  /** The agent's default store (the chart's defaultStorage.uri). */
  static final String DEFAULT_STORE = "s3://ckpt/default";

  static Map<String, String> agentEnv() {
    Map<String, String> env = new java.util.HashMap<>(s3.env());
    env.put("STASIS_SPOOL_DIR", work.resolve("spool").toString());
    return env;
  }

  /** The engine the agent uses; a test may slow its sink down to delete mid-dump. */
  static volatile ProcessDumper engine = ProcessDumper.ENGINE;

  /**
   * Whether the agent's dumper copies live ({@link ProcessDumper#startLive}): one test turns it on.
   */
  static volatile boolean liveCopy = false;

  @BeforeEach
  void setUp() throws Exception {
    if (agent != null) {
      return;
    }
    s3 = S3Server.start().bucket("ckpt");
    test = CrdSetup.client(server, CrdSetup.TEST_UA);
    CrdSetup.install(test);
    agentClient = CrdSetup.client(server, AGENT_UA);
    agent =
        new NodeAgent(
                agentClient,
                NODE,
                DEFAULT_STORE,
                // as the Helm chart configures it: leave-running checkpoints spool their pages;
                // the default store's credentials come from the environment
                agentEnv(),
                ContainerProcesses.host(),
                new ProcessDumper() {
                  @Override
                  public Outcome dump(
                      int pid,
                      boolean leaveRunning,
                      ImageSink sink,
                      java.util.function.Consumer<String> progress,
                      dev.stasis.dump.DumpOptions.KillGate gate)
                      throws Exception {
                    return engine.dump(pid, leaveRunning, sink, progress, gate);
                  }

                  @Override
                  public dev.stasis.dump.LiveCopy startLive(
                      int pid,
                      java.util.function.Consumer<String> progress,
                      java.util.function.Consumer<String> notice,
                      java.util.function.BooleanSupplier cancelled)
                      throws Exception {
                    return liveCopy ? engine.startLive(pid, progress, notice, cancelled) : null;
                  }

                  @Override
                  public Outcome dump(
                      int pid,
                      boolean leaveRunning,
                      ImageSink sink,
                      java.util.function.Consumer<String> progress,
                      dev.stasis.dump.DumpOptions.KillGate gate,
                      dev.stasis.dump.LiveCopy live,
                      boolean externalNetns)
                      throws Exception {
                    if (live == null) {
                      return dump(pid, leaveRunning, sink, progress, gate); // as before
                    }
                    return engine.dump(
                        pid, leaveRunning, sink, progress, gate, live, externalNetns);
                  }

                  @Override
                  public List<String> restorability(int pid, boolean externalNetns)
                      throws IOException {
                    return engine.restorability(pid, externalNetns);
                  }
                })
            .start();
  }

  @AfterAll
  static void tearDown() {
    if (agent != null) {
      agent.close();
      agentClient.close();
      test.close();
      s3.close();
    }
  }

  /** The store of the container "app" of the checkpoint at {@code location}. */
  static CheckpointStore appStore(String location) throws java.io.IOException {
    return CheckpointStore.open(location + "/app", StoreOptions.defaults().withS3(s3.config()));
  }

  Checkpoint get(String ns, String name) {
    return test.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
  }

  void podAndSecret(String ns, RuncContainer ctr) {
    test.resource(Fixtures.runningPod(ns, "web", NODE, "app", ctr.containerId())).create();
    secret(ns);
  }

  void secret(String ns) {
    test.resource(
            new SecretBuilder()
                .withNewMetadata()
                .withNamespace(ns)
                .withName("s3-creds")
                .endMetadata()
                .withData(
                    Map.of(
                        "accessKey", b64(S3Server.ACCESS_KEY),
                        "secretKey", b64(S3Server.SECRET_KEY),
                        "endpoint", b64(s3.endpoint())))
                .build())
        .create();
  }

  Checkpoint checkpoint(String ns, String name) {
    return checkpoint(ns, name, true);
  }

  Checkpoint checkpoint(String ns, String name, boolean leaveRunning) {
    Checkpoint c = Fixtures.checkpoint(ns, name, "web");
    if (!leaveRunning) {
      c.getSpec().setLeaveRunning(false);
    }
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://ckpt/k8s");
    st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
    c.getSpec().setStorage(st);
    c.getSpec().setTimeoutSeconds(60);
    return test.resource(c).create();
  }

  Checkpoint awaitTerminal(String ns, String name) {
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> {
              Checkpoint c = get(ns, name);
              return c.getStatus() != null
                  && c.getStatus().phase != null
                  && c.getStatus().phase.terminal();
            });
    return get(ns, name);
  }

  /**
   * The whole chain: a runc container in its own PID, mount, network... namespaces with pipes for
   * stdio. Completed, stored in S3, decoded by crit with the container's init as PID 1, workload
   * still running; starting it left the host mount table alone.
   */
  @Test
  @Order(0)
  void checkpointOfARuncContainerCompletesAndCritDecodesItsInitAsPid1() throws Exception {
    String ns = "e2e-runc";
    long rootMounts = rootMounts();
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      assertEquals(rootMounts, rootMounts(), "the container must not mount anything onto /");
      podAndSecret(ns, ctr);
      checkpoint(ns, "c0");
      var s = assertCompletedAndCritDecodes(ns, "c0", ctr, 1);

      // deletionPolicy Retain (the default): deleting the Checkpoint keeps the images.
      test.resource(get(ns, "c0")).delete();
      await().atMost(Duration.ofSeconds(30)).until(() -> get(ns, "c0") == null);
      try (CheckpointStore store = appStore(s.location)) {
        assertTrue(store.list().get(0).complete(), "retained");
      }
    }
  }

  @Test
  @Order(6)
  void deletionPolicyDeleteRemovesTheStoredImages() throws Exception {
    String ns = "e2e-policy";
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      Checkpoint c = Fixtures.checkpoint(ns, "c6", "web");
      CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
      st.setUri("s3://ckpt/k8s");
      st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
      c.getSpec().setStorage(st);
      c.getSpec().setDeletionPolicy(CheckpointSpec.DeletionPolicy.Delete);
      test.resource(c).create();
      Checkpoint done = awaitTerminal(ns, "c6");
      assertEquals(Phase.Completed, done.getStatus().phase, done.getStatus().message);
      try (CheckpointStore store = appStore(done.getStatus().location)) {
        assertTrue(!store.objectKeys().isEmpty());
        test.resource(done).delete();
        await().atMost(Duration.ofSeconds(30)).until(() -> get(ns, "c6") == null);
        assertEquals(List.of(), store.objectKeys(), "deletionPolicy Delete removes the images");
      }
    }
  }

  /**
   * Issue 4: a runc container in its own namespaces, stdio on pipes. The images name its init PID
   * 1, its ids carry its own pid/mnt namespace ids (not the root ones), and its stdio are pipe
   * entries.
   */
  @Test
  @Order(1)
  void containerInItsOwnNamespacesIsCheckpointedWithItsNamespaceIdsAndPipes() throws Exception {
    String ns = "e2e";
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      checkpoint(ns, "c1");
      var st = assertCompletedAndCritDecodes(ns, "c1", ctr, 1);
      Path images = work.resolve("fetched-" + ns + "-c1");
      try (CheckpointStore store = appStore(st.location)) {
        var source = store.fetch(work.resolve("manifest-" + ns)).manifest().source();
        assertTrue(source.get("dump.own_namespaces").contains("pid"), source.toString());
        // leave-running, with the agent's spool: the pages went to local disk, then up
        assertTrue(Long.parseLong(source.get("dump.spooled_bytes")) > 0, source.toString());
        assertTrue(
            !source.containsKey("dump.restorable"),
            "nothing marks the set unrestorable: " + source);
      }
      for (Crit.Version v : Crit.Version.values()) {
        JsonNode ids = Crit.entries(Crit.decode(v, images.resolve("ids-1.img"))).get(0);
        JsonNode root =
            Crit.entries(Crit.decode(v, images.resolve("inventory.img"))).get(0).get("root_ids");
        for (String own : List.of("pid_ns_id", "mnt_ns_id", "net_ns_id")) {
          assertTrue(ids.get(own).asInt() != root.get(own).asInt(), v + " " + own + " " + ids);
        }
        JsonNode fds = Crit.entries(Crit.decode(v, images.resolve("fdinfo-2.img")));
        assertEquals("PIPE", fds.get(0).get("type").asText(), v + " stdin " + fds);
        assertEquals("PIPE", fds.get(1).get("type").asText(), v + " stdout " + fds);
      }
      // Issue 12: the stored images are a container runc restores; it goes on counting.
      int printed = ctr.lines();
      assertRestoredGoesOn(ctr, images, printed);
    }
  }

  /**
   * Issue 12: the stored images are a container runc restores: {@code ctr} deleted and restored
   * from {@code images}, it prints at least three more numbers, the first of them after the first
   * and at most one past the {@code printed} lines the original had printed before the dump.
   */
  static void assertRestoredGoesOn(RuncContainer ctr, Path images, int printed) throws Exception {
    ctr.delete();
    ctr.restore(images);
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    List<String> restored = List.of();
    while (restored.size() < 3 && System.nanoTime() < deadline) {
      Thread.sleep(100);
      restored =
          Files.readAllLines(ctr.restoredLog()).stream().filter(l -> l.matches("[0-9]+")).toList();
    }
    assertTrue(restored.size() >= 3, "restored container prints: " + restored);
    int first = Integer.parseInt(restored.get(0));
    assertTrue(first > 1 && first <= printed + 1, first + " after " + printed + " lines");
  }

  /**
   * Like {@link #assertCompletedAndCritDecodes} for a process tree rooted at the container's init.
   */
  CheckpointStatus assertCompletedAndCritDecodesRoot(String ns, String name, RuncContainer ctr)
      throws Exception {
    return assertCompletedAndCritDecodes(ns, name, ctr, 0);
  }

  /**
   * Waits for Completed, checks the status, fetches the images from S3 and has both crits decode
   * the pstree: one process, with {@code expectedPid} (0: any tree rooted at the container's init,
   * PID 1 in its PID namespace). The workload must still be running.
   */
  CheckpointStatus assertCompletedAndCritDecodes(
      String ns, String name, RuncContainer ctr, int expectedPid) throws Exception {
    Checkpoint done = awaitTerminal(ns, name);
    var s = done.getStatus();
    assertEquals(Phase.Completed, s.phase, "ended " + s.phase + ": " + s.message);
    assertEquals("True", StatusAggregator.condition(s, StatusAggregator.READY).getStatus());
    assertEquals(NODE, s.nodeName);
    assertEquals(
        "s3://ckpt/k8s/" + ns + "/" + name + "/" + done.getMetadata().getUid(), s.location);
    assertTrue(s.sizeBytes > 0);
    assertTrue(s.durations.dumpMillis != null && s.durations.frozenMillis != null);
    assertTrue(s.startTime != null && s.completionTime != null);
    Path images = work.resolve("fetched-" + ns + "-" + name);
    try (CheckpointStore store = appStore(s.location)) {
      store.fetch(images);
    }
    for (Crit.Version v : Crit.Version.values()) {
      JsonNode pstree = Crit.entries(Crit.decode(v, images.resolve("pstree.img")));
      if (expectedPid > 0) {
        assertEquals(1, pstree.size(), "one process in the container");
      }
      int root = expectedPid > 0 ? expectedPid : 1;
      assertEquals(root, pstree.get(0).get("pid").asInt(), "the container's init comes first");
      java.util.Set<Integer> pids = new java.util.HashSet<>();
      pstree.forEach(e -> pids.add(e.get("pid").asInt()));
      for (int i = 1; i < pstree.size(); i++) {
        assertTrue(pids.contains(pstree.get(i).get("ppid").asInt()), "tree closed: " + pstree);
      }
    }
    int lines = ctr.lines();
    await().atMost(Duration.ofSeconds(5)).until(() -> ctr.lines() > lines + 2);
    assertTrue(
        test.v1().events().inNamespace(ns).list().getItems().stream()
            .anyMatch(e -> "Completed".equals(e.getReason())),
        "the agent records an Event per phase");
    return s;
  }

  @Test
  @Order(2)
  void deletingARunningCheckpointReleasesTheWorkloadAndLeavesNothing() throws Exception {
    String ns = "e2e-del";
    engine =
        (pid, leaveRunning, sink, progress, gate) ->
            ProcessDumper.ENGINE.dump(pid, leaveRunning, new SlowSink(sink), progress, gate);
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      Checkpoint c = checkpoint(ns, "c2");
      await().atMost(Duration.ofSeconds(30)).until(() -> agent.isRunning(c.getMetadata().getUid()));
      test.resource(get(ns, "c2")).delete();
      await().atMost(Duration.ofSeconds(30)).until(() -> get(ns, "c2") == null);
      assertTrue(ctr.alive());
      assertEquals("0", tracer(ctr.hostPid()), "nobody traces the workload any more");
      int lines = ctr.lines();
      await().atMost(Duration.ofSeconds(5)).until(() -> ctr.lines() > lines + 2);
      try (CheckpointStore store =
          appStore("s3://ckpt/k8s/" + ns + "/c2/" + c.getMetadata().getUid())) {
        assertEquals(List.of(), store.objectKeys(), "partial upload removed");
        assertEquals(List.of(), store.pendingUploads(), "no multipart upload left");
      }
    } finally {
      engine = ProcessDumper.ENGINE;
    }
  }

  @Test
  @Order(3)
  void unknownContainerOnTheNodeFailsWithoutTouchingAnything() throws Exception {
    String ns = "e2e-gone";
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
    }
    // The pod object still names the container, but it no longer runs on the node.
    checkpoint(ns, "c3");
    Checkpoint done = awaitTerminal(ns, "c3");
    assertEquals(Phase.Failed, done.getStatus().phase);
    assertEquals(
        "ProcessNotFound",
        StatusAggregator.condition(done.getStatus(), StatusAggregator.FAILED).getReason());
    assertTrue(done.getStatus().message.contains("no process of container"));
  }

  /**
   * A Checkpoint claimed by an earlier instance of this node's agent that died mid-dump: it left
   * the container frozen and a partial upload. The live agent must not dump again: it thaws the
   * container, removes the partial upload and fails the checkpoint with AgentRestarted.
   */
  @Test
  @Order(4)
  void restartedAgentUndoesAPartialDumpInsteadOfDumpingAgain() throws Exception {
    String ns = "e2e-restart";
    AtomicInteger dumps = new AtomicInteger();
    engine =
        (pid, leaveRunning, sink, progress, gate) -> {
          dumps.incrementAndGet();
          throw new AssertionError("a claimed checkpoint must never be dumped again");
        };
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      Checkpoint c = claimedByDeadAgent(ns, "c4");
      String location = "s3://ckpt/k8s/" + ns + "/c4/" + c.getMetadata().getUid();
      ImageSink partial = appStore(location).newCheckpoint();
      try (WritableByteChannel ch = partial.create("core-1.img")) {
        ch.write(java.nio.ByteBuffer.wrap(new byte[4096]));
      }
      ContainerProcesses.Container cont = ContainerProcesses.host().resolve(ctr.containerId());
      CgroupFreezer.freeze(cont, Duration.ofSeconds(5)); // left frozen by the dead agent
      int frozenAt = ctr.lines();

      runningSince(c, ctr);
      Checkpoint done = awaitTerminal(ns, "c4");
      assertEquals(Phase.Failed, done.getStatus().phase, done.getStatus().message);
      assertEquals(
          "AgentRestarted",
          StatusAggregator.condition(done.getStatus(), StatusAggregator.FAILED).getReason());
      await().atMost(Duration.ofSeconds(5)).until(() -> ctr.lines() > frozenAt + 2);
      try (CheckpointStore store = appStore(location)) {
        assertEquals(List.of(), store.objectKeys(), "partial upload removed");
        assertEquals(List.of(), store.pendingUploads());
      }
      assertEquals(0, dumps.get());
    } finally {
      engine = ProcessDumper.ENGINE;
    }
  }

  /**
   * The earlier agent instance stored the complete image set (manifest written) but died before
   * reporting it: the result is not lost and nothing is dumped again. The image set here is written
   * through the store directly: only its completeness matters to the agent.
   */
  @Test
  @Order(5)
  void restartedAgentReportsAStoredResultWithoutDumpingAgain() throws Exception {
    String ns = "e2e-found";
    AtomicInteger dumps = new AtomicInteger();
    engine =
        (pid, leaveRunning, sink, progress, gate) -> {
          dumps.incrementAndGet();
          throw new AssertionError("a claimed checkpoint must never be dumped again");
        };
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      Checkpoint c = claimedByDeadAgent(ns, "c5");
      String location = "s3://ckpt/k8s/" + ns + "/c5/" + c.getMetadata().getUid();
      Path dir = Files.createDirectories(work.resolve("stored-" + ns));
      Files.write(dir.resolve("inventory.img"), new byte[512]);
      Files.write(dir.resolve("pstree.img"), new byte[256]);
      try (CheckpointStore store = appStore(location)) {
        store.push(dir);
      }
      runningSince(c, ctr);
      Checkpoint done = awaitTerminal(ns, "c5");
      assertEquals(Phase.Completed, done.getStatus().phase, done.getStatus().message);
      assertEquals(location, done.getStatus().location);
      assertTrue(
          done.getStatus().sizeBytes >= 768, "size from the store: " + done.getStatus().sizeBytes);
      assertTrue(done.getStatus().message.contains("previous instance"));
      assertEquals(0, dumps.get());
    } finally {
      engine = ProcessDumper.ENGINE;
    }
  }

  /** zstd + AES-GCM with the key from a Secret: only the key holder can fetch the images. */
  @Test
  @Order(7)
  void compressedAndEncryptedCheckpointNeedsTheKeyToFetch() throws Exception {
    String ns = "e2e-crypt";
    String hexKey = "5e".repeat(32);
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      test.resource(
              new SecretBuilder()
                  .withNewMetadata()
                  .withNamespace(ns)
                  .withName("ckpt-key")
                  .endMetadata()
                  .withData(Map.of("key", b64(hexKey)))
                  .build())
          .create();
      Checkpoint c = Fixtures.checkpoint(ns, "c7", "web");
      CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
      st.setUri("s3://ckpt/k8s");
      st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
      c.getSpec().setStorage(st);
      c.getSpec().setCompression(CheckpointSpec.Compression.zstd);
      CheckpointSpec.EncryptionSpec enc = new CheckpointSpec.EncryptionSpec();
      CheckpointSpec.SecretRef keyRef = new CheckpointSpec.SecretRef("ckpt-key", null);
      keyRef.setKey("key");
      enc.setKeySecretRef(keyRef);
      c.getSpec().setEncryption(enc);
      test.resource(c).create();
      Checkpoint done = awaitTerminal(ns, "c7");
      assertEquals(Phase.Completed, done.getStatus().phase, done.getStatus().message);
      String uri = done.getStatus().location + "/app";
      try (CheckpointStore noKey =
          CheckpointStore.open(uri, StoreOptions.defaults().withS3(s3.config()))) {
        assertThrows(
            dev.stasis.storage.StorageException.class,
            () -> noKey.fetch(work.resolve("no-key")),
            "encrypted images must not be readable without the key");
      }
      Path images = work.resolve("fetched-crypt");
      try (CheckpointStore store =
          CheckpointStore.open(
              uri,
              StoreOptions.defaults()
                  .withS3(s3.config())
                  .withEncryption(dev.stasis.storage.EncryptionKey.parse(hexKey, "test")))) {
        store.fetch(images);
      }
      JsonNode pstree =
          Crit.entries(Crit.decode(Crit.Version.BOOKWORM, images.resolve("pstree.img")));
      assertEquals(1, pstree.get(0).get("pid").asInt());
    }
  }

  /** A container whose init forks (a shell running sleep): the engine dumps the whole tree. */
  @Test
  @Order(8)
  void processTreeContainerIsCheckpointedWhole() throws Exception {
    String ns = "e2e-tree";
    try (RuncContainer ctr =
        RuncContainer.start(work, "i=0; while :; do i=$((i+1)); echo $i; sleep 0.3; done")) {
      podAndSecret(ns, ctr);
      checkpoint(ns, "c8");
      CheckpointStatus s = assertCompletedAndCritDecodesRoot(ns, "c8", ctr);
      assertTrue(s.message.contains("stored"), s.message);
    }
  }

  /**
   * Issue 14: a two-container pod. Both containers are frozen at one cut, dumped, stored each in
   * its own image set; per-container progress never steps the pod's phase back (it threw "cannot go
   * back from Uploading to Running" before); both keep running. Their own namespaces are written as
   * images now, so the engine has no warning and the pod is reported Restorable=True.
   */
  @Test
  @Order(9)
  void twoContainerPodIsOneCheckpointWithPerContainerProgressAndRestorable() throws Exception {
    String ns = "e2e-two";
    try (RuncContainer app = RuncContainer.counter(work);
        RuncContainer side = RuncContainer.counter(work)) {
      var ids = new java.util.LinkedHashMap<String, String>();
      ids.put("app", app.containerId());
      ids.put("side", side.containerId());
      test.resource(Fixtures.runningPod(ns, "web", NODE, ids)).create();
      secret(ns);
      checkpoint(ns, "c9");
      Checkpoint done = awaitTerminal(ns, "c9");
      CheckpointStatus s = done.getStatus();
      assertEquals(Phase.Completed, s.phase, s.message);
      assertEquals(List.of("app", "side"), s.containers.stream().map(r -> r.name).toList(), "both");
      long sum = 0;
      for (CheckpointStatus.ContainerRef r : s.containers) {
        assertEquals(CheckpointStatus.ContainerPhase.Stored, r.phase, r.name);
        sum += r.sizeBytes;
        try (CheckpointStore store =
            CheckpointStore.open(
                s.location + "/" + r.name, StoreOptions.defaults().withS3(s3.config()))) {
          Path images = work.resolve("fetched-two-" + r.name);
          assertTrue(r.checkpointID != null && !r.checkpointID.isBlank(), r.name + "'s id");
          // the id in the status pins exactly this checkpoint (issue 14)
          store.fetch(images, r.checkpointID);
          JsonNode pstree =
              Crit.entries(Crit.decode(Crit.Version.BOOKWORM, images.resolve("pstree.img")));
          assertEquals(1, pstree.get(0).get("pid").asInt(), r.name + "'s init is PID 1");
        }
      }
      assertEquals(s.sizeBytes.longValue(), sum, "the pod's size is its containers' sum");
      var restorable = StatusAggregator.condition(s, StatusAggregator.RESTORABLE);
      assertEquals("True", restorable.getStatus(), restorable.getMessage());
      for (RuncContainer c : List.of(app, side)) {
        int lines = c.lines();
        await().atMost(Duration.ofSeconds(5)).until(() -> c.lines() > lines + 2);
      }
    }
  }

  /**
   * Issue 14: leaveRunning: false on a pod one of whose containers could not be brought back (its
   * own user namespace, which the engine refuses) is refused before anything is frozen:
   * Failed/NotRestorable, Restorable=False naming the container, a Warning Event, both containers
   * alive and untouched (the other one never seized either), nothing stored.
   */
  @Test
  @Order(11)
  void killModeIsRefusedBeforeFreezingWhenTheCheckpointCouldNotBringThePodBack() throws Exception {
    String ns = "e2e-kill";
    try (RuncContainer app = RuncContainer.counter(work);
        RuncContainer side = RuncContainer.counterInOwnUserNamespace(work)) {
      var ids = new java.util.LinkedHashMap<String, String>();
      ids.put("app", app.containerId());
      ids.put("side", side.containerId());
      test.resource(Fixtures.runningPod(ns, "web", NODE, ids)).create();
      secret(ns);
      Checkpoint c = Fixtures.checkpoint(ns, "c11", "web");
      CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
      st.setUri("s3://ckpt/k8s");
      st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
      c.getSpec().setStorage(st);
      c.getSpec().setLeaveRunning(false);
      c = test.resource(c).create();
      Checkpoint done = awaitTerminal(ns, "c11");
      CheckpointStatus s = done.getStatus();
      assertEquals(Phase.Failed, s.phase, s.message);
      assertEquals(
          "NotRestorable", StatusAggregator.condition(s, StatusAggregator.FAILED).getReason());
      var restorable = StatusAggregator.condition(s, StatusAggregator.RESTORABLE);
      assertEquals("False", restorable.getStatus());
      assertTrue(
          restorable.getMessage().contains("container 'side'")
              && restorable.getMessage().contains("user namespace")
              && !restorable.getMessage().contains("container 'app'"),
          restorable.getMessage());
      assertTrue(s.message.contains("refused before freezing"), s.message);
      assertTrue(
          test.v1().events().inNamespace(ns).list().getItems().stream()
              .anyMatch(
                  e -> "NotRestorable".equals(e.getReason()) && "Warning".equals(e.getType())),
          "a Warning Event says why");
      for (RuncContainer r : List.of(app, side)) {
        assertTrue(r.alive());
        assertEquals("0", tracer(r.hostPid()), "never seized");
        int lines = r.lines();
        await().atMost(Duration.ofSeconds(5)).until(() -> r.lines() > lines + 2);
      }
      String location = "s3://ckpt/k8s/" + ns + "/c11/" + c.getMetadata().getUid();
      try (CheckpointStore store = appStore(location)) {
        assertEquals(List.of(), store.objectKeys(), "nothing stored");
      }
    }
  }

  /**
   * Kill mode through the agent pre-copies (docs/dump.md "Pre-copy", "In the node agent"): the
   * container's memory is copied while it runs and stored as checkpoint/parent/ before the cut,
   * which stores only the delta. Completed, the container killed; the fetched set has its parent/,
   * its pagemap marks pages as in it (both crits), and runc restores it: the counter goes on from
   * where the cut found it.
   */
  @Test
  @Order(15)
  void killModeCheckpointPreCopiesIntoTheStoreAndRuncRestoresIt() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        dev.stasis.testing.LiveTracking.kernelHasAsyncWp(),
        "no asynchronous userfaultfd WP on this kernel");
    String ns = "e2e-precopy";
    liveCopy = true;
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      checkpoint(ns, "c15", false);
      CheckpointStatus s = awaitTerminal(ns, "c15").getStatus();
      assertEquals(Phase.Completed, s.phase, s.message);
      await().atMost(Duration.ofSeconds(10)).until(() -> !ctr.alive());
      int printed = ctr.lines();
      Path images = work.resolve("fetched-" + ns);
      try (CheckpointStore store = appStore(s.location)) {
        var source = store.fetch(images).manifest().source();
        assertEquals("true", source.get("dump.parent"), source.toString());
        assertTrue(
            store.objectKeys().stream().anyMatch(k -> k.contains("checkpoint/parent/")),
            "the parent set is stored: " + store.objectKeys());
      }
      for (Crit.Version v : Crit.Version.values()) {
        long[] par = Crit.pagemapPages(Crit.decode(v, images.resolve("parent/pagemap-1.img")));
        long[] fin = Crit.pagemapPages(Crit.decode(v, images.resolve("pagemap-1.img")));
        assertTrue(par[0] > 0 && par[1] == 0, v + ": parent " + java.util.Arrays.toString(par));
        assertTrue(fin[1] > 0, v + ": pages in the parent " + java.util.Arrays.toString(fin));
      }
      assertRestoredGoesOn(ctr, images, printed);
    } finally {
      liveCopy = false;
    }
  }

  /**
   * Migration pre-copy (holdFinalFreeze): a leave-running Checkpoint that holds its final cut. The
   * agent stores the container's parent set while it runs and reports ParentStored (the store holds
   * checkpoint/parent/, nothing is complete); the counter keeps counting and the checkpoint stays
   * Running until the test, as the operator would, annotates stasis.dev/final-freeze: go. Then it
   * completes with frozenAt after the go, the fetched set's pagemap points into its parent, and
   * runc restores it: the counter goes on from the cut, which is later than the go.
   */
  @Test
  @Order(16)
  void heldCheckpointStoresTheParentWaitsForTheGoAndRuncRestoresTheCut() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        dev.stasis.testing.LiveTracking.kernelHasAsyncWp(),
        "no asynchronous userfaultfd WP on this kernel");
    String ns = "e2e-held";
    liveCopy = true;
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      String uid = createHeldUntilParentStored(ns, "c16");
      CheckpointStatus held = get(ns, "c16").getStatus();
      assertEquals(Phase.Running, held.phase, held.message);
      assertEquals(
          "True", StatusAggregator.condition(held, StatusAggregator.PARENT_STORED).getStatus());
      assertEquals("False", StatusAggregator.condition(held, StatusAggregator.READY).getStatus());
      Instant parentStoredAt = Instant.parse(held.parentStoredAt);
      try (CheckpointStore store = appStore("s3://ckpt/k8s/" + ns + "/c16/" + uid)) {
        assertTrue(
            store.objectKeys().stream().anyMatch(k -> k.contains("checkpoint/parent/")),
            "the parent set is stored before the go: " + store.objectKeys());
        assertTrue(store.list().stream().noneMatch(x -> x.complete()), "nothing is complete yet");
        // with its parent manifest: the parent is fetched and verified before the final manifest
        CheckpointStore.Fetched pre = store.fetchParent(work.resolve("c16-parent"));
        assertTrue(
            Files.isRegularFile(pre.dir().resolve("parent/pagemap-1.img")),
            "the parent decoded before the go: " + pre.files());
      }
      // the hold: the workload runs (not frozen, not stopped) and the cut waits
      int before = ctr.lines();
      await().atMost(Duration.ofSeconds(10)).until(() -> ctr.lines() > before + 10);
      assertEquals("0", tracer(ctr.hostPid()), "not held under ptrace");
      assertEquals(Phase.Running, get(ns, "c16").getStatus().phase, "still waiting for the go");

      int printedAtGo = ctr.lines();
      Instant goAt = Instant.now().truncatedTo(ChronoUnit.MILLIS);
      test.resources(Checkpoint.class)
          .inNamespace(ns)
          .withName("c16")
          .edit(
              x -> {
                x.getMetadata().getAnnotations().put(Labels.FINAL_FREEZE, Labels.FINAL_FREEZE_GO);
                return x;
              });
      CheckpointStatus s = awaitTerminal(ns, "c16").getStatus();
      assertEquals(Phase.Completed, s.phase, s.message);
      Instant frozenAt = Instant.parse(s.frozenAt);
      assertTrue(
          !frozenAt.isBefore(goAt) && frozenAt.isAfter(parentStoredAt),
          "the cut (" + s.frozenAt + ") comes after the go (" + goAt + ")");
      assertEquals(held.parentStoredAt, s.parentStoredAt, "kept");
      assertTrue(ctr.alive(), "leave-running: the source runs on");
      int printed = ctr.lines();
      Path images = work.resolve("fetched-" + ns);
      try (CheckpointStore store = appStore(s.location)) {
        var source = store.fetch(images).manifest().source();
        assertEquals("true", source.get("dump.parent"), source.toString());
        assertEquals("true", source.get("dump.leave_running"), source.toString());
      }
      for (Crit.Version v : Crit.Version.values()) {
        long[] par = Crit.pagemapPages(Crit.decode(v, images.resolve("parent/pagemap-1.img")));
        long[] fin = Crit.pagemapPages(Crit.decode(v, images.resolve("pagemap-1.img")));
        assertTrue(par[0] > 0 && par[1] == 0, v + ": parent " + java.util.Arrays.toString(par));
        assertTrue(fin[1] > 0, v + ": pages in the parent " + java.util.Arrays.toString(fin));
      }
      ctr.delete();
      ctr.restore(images);
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      List<String> restored = List.of();
      while (restored.size() < 3 && System.nanoTime() < deadline) {
        Thread.sleep(100);
        restored =
            Files.readAllLines(ctr.restoredLog()).stream()
                .filter(l -> l.matches("[0-9]+"))
                .toList();
      }
      assertTrue(restored.size() >= 3, "restored container prints: " + restored);
      int first = Integer.parseInt(restored.get(0));
      assertTrue(
          first > printedAtGo && first <= printed + 1,
          "restored at the cut: "
              + first
              + " after "
              + printedAtGo
              + " lines at the go and "
              + printed
              + " at completion");
    } finally {
      liveCopy = false;
    }
  }

  /**
   * A held Checkpoint deleted during its hold (a Migration rolled back): the agent ends the hold
   * without a cut, the container runs on untraced with no write tracking left, the stored parent
   * set and any upload are removed, and the Checkpoint goes once the agent let go of it.
   */
  @Test
  @Order(17)
  void heldCheckpointDeletedDuringItsHoldReleasesTheWorkloadUntrackedAndLeavesNothing()
      throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue(
        dev.stasis.testing.LiveTracking.kernelHasAsyncWp(),
        "no asynchronous userfaultfd WP on this kernel");
    String ns = "e2e-held-del";
    liveCopy = true;
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      String uid = createHeldUntilParentStored(ns, "c17");
      assertEquals(Phase.Running, get(ns, "c17").getStatus().phase, "held");
      assertTrue(
          dev.stasis.testing.LiveTracking.registeredVmas(ctr.hostPid()) > 0,
          "write-tracked during the hold");
      try (CheckpointStore store = appStore("s3://ckpt/k8s/" + ns + "/c17/" + uid)) {
        assertTrue(
            store.objectKeys().stream()
                .anyMatch(k -> k.endsWith("checkpoint/parent.manifest.json")),
            "the parent manifest is stored in the hold: " + store.objectKeys());
      }
      test.resource(get(ns, "c17")).delete();
      await().atMost(Duration.ofSeconds(30)).until(() -> get(ns, "c17") == null);
      assertTrue(ctr.alive());
      assertEquals("0", tracer(ctr.hostPid()), "nobody traces the workload");
      dev.stasis.testing.LiveTracking.assertNoUserfaultfd(ctr.hostPid());
      int lines = ctr.lines();
      await().atMost(Duration.ofSeconds(5)).until(() -> ctr.lines() > lines + 2);
      try (CheckpointStore store = appStore("s3://ckpt/k8s/" + ns + "/c17/" + uid)) {
        assertEquals(List.of(), store.objectKeys(), "the parent set is removed");
        assertEquals(List.of(), store.pendingUploads(), "no multipart upload left");
      }
    } finally {
      liveCopy = false;
    }
  }

  /**
   * Issue 14: install.md's first checkpoint, as documented: its workload script (no longer busybox
   * ping, whose ICMP socket cannot be dumped) in a real container, its Checkpoint manifest as
   * written, the default store. It completes and the workload keeps running.
   */
  @Test
  @Order(12)
  void documentedFirstCheckpointCompletes() throws Exception {
    String ns = "e2e-docs";
    try (RuncContainer ctr = RuncContainer.start(work, DocsExamples.firstCheckpointWorkload())) {
      test.resource(Fixtures.runningPod(ns, "counter", NODE, "counter", ctr.containerId()))
          .create();
      Checkpoint c =
          test.getKubernetesSerialization()
              .unmarshal(DocsExamples.firstCheckpoint().yaml(), Checkpoint.class);
      c.getMetadata().setNamespace(ns);
      c = test.resource(c).create();
      Checkpoint done = awaitTerminal(ns, c.getMetadata().getName());
      CheckpointStatus s = done.getStatus();
      assertEquals(Phase.Completed, s.phase, s.message);
      assertEquals(
          DEFAULT_STORE
              + "/"
              + ns
              + "/"
              + c.getMetadata().getName()
              + "/"
              + c.getMetadata().getUid(),
          s.location);
      try (CheckpointStore store =
          CheckpointStore.open(
              s.location + "/counter", StoreOptions.defaults().withS3(s3.config()))) {
        assertTrue(store.list().get(0).complete());
      }
      int lines = ctr.lines();
      await().atMost(Duration.ofSeconds(10)).until(() -> ctr.lines() > lines + 2);
    }
  }

  /**
   * Issue 14: the agent trusts no container ID written in a Checkpoint's status (whoever can write
   * it could aim the privileged agent at any container of the node). It re-reads the pod: the
   * forged ID of another container is ignored and the pod's own container is dumped; a pod that
   * runs on another node is refused (PodChanged) without touching anything.
   */
  @Test
  @Order(13)
  void agentDumpsThePodsContainersNotTheIdsAStatusNames() throws Exception {
    String ns = "e2e-forged";
    try (RuncContainer ctr = RuncContainer.counter(work);
        RuncContainer victim = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      var elsewhere =
          Fixtures.runningPod(ns, "elsewhere", "other-node", "app", victim.containerId());
      test.resource(elsewhere).create();

      Checkpoint forged = dispatchedWithForgedStatus(ns, "c13", "web", victim.containerId());
      Checkpoint done = awaitTerminal(ns, "c13");
      assertEquals(Phase.Completed, done.getStatus().phase, done.getStatus().message);
      assertEquals(ctr.containerId(), done.getStatus().containers.get(0).containerID);
      try (CheckpointStore store = appStore(done.getStatus().location)) {
        var source = store.fetch(work.resolve("forged-" + ns)).manifest().source();
        assertEquals(ctr.id(), source.get("container.id"), "the pod's container, not the forged");
      }

      dispatchedWithForgedStatus(ns, "c13b", "elsewhere", victim.containerId());
      Checkpoint refused = awaitTerminal(ns, "c13b");
      assertEquals(Phase.Failed, refused.getStatus().phase);
      assertEquals(
          "PodChanged",
          StatusAggregator.condition(refused.getStatus(), StatusAggregator.FAILED).getReason());
      assertTrue(refused.getStatus().message.contains("runs on node other-node"));
      int lines = victim.lines();
      await().atMost(Duration.ofSeconds(5)).until(() -> victim.lines() > lines + 2);
      assertTrue(forged.getMetadata().getUid() != null);
    }
  }

  /**
   * A Checkpoint labeled for this node with a Pending status naming {@code containerId} for the
   * container "app", as someone allowed to write Checkpoints and their status could forge it.
   */
  Checkpoint dispatchedWithForgedStatus(String ns, String name, String pod, String containerId) {
    Checkpoint c = Fixtures.checkpoint(ns, name, pod);
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://ckpt/k8s");
    st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
    c.getSpec().setStorage(st);
    c.getSpec().setTimeoutSeconds(60);
    c.getMetadata().setLabels(Map.of(Labels.NODE, NODE));
    c.getMetadata()
        .setAnnotations(
            Map.of(
                Labels.ACCEPTED_GENERATION,
                "1",
                Labels.DISPATCHED_AT,
                Instant.now().truncatedTo(ChronoUnit.SECONDS).toString()));
    c = test.resource(c).create();
    c.setStatus(
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Pending, Reason.Dispatched, "forged")
                .containers(List.of(new CheckpointStatus.ContainerRef("app", containerId))),
            Instant.now()));
    return test.resource(c).updateStatus();
  }

  /**
   * Mounts on / in the host mount namespace: stacked ones make every later upstream criu dump on
   * the machine refuse, so no test may add any.
   */
  static long rootMounts() throws java.io.IOException {
    return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
        .filter(l -> l.split(" ")[4].equals("/"))
        .count();
  }

  /** A dispatched Checkpoint that another (now dead) instance of this node's agent claimed. */
  Checkpoint claimedByDeadAgent(String ns, String name) {
    Checkpoint c = Fixtures.checkpoint(ns, name, "web");
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://ckpt/k8s");
    st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
    c.getSpec().setStorage(st);
    c.getSpec().setTimeoutSeconds(60);
    c.getMetadata().setLabels(Map.of(Labels.NODE, NODE));
    c.getMetadata()
        .setAnnotations(
            Map.of(
                Labels.ACCEPTED_GENERATION,
                "1",
                Labels.DISPATCHED_AT,
                Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(),
                Labels.CLAIM,
                NODE + "/dead0001"));
    c.getMetadata().setFinalizers(List.of(Labels.AGENT_FINALIZER));
    return test.resource(c).create();
  }

  /** The status the dead instance had written: Running, with the pod's container. */
  void runningSince(Checkpoint c, RuncContainer ctr) {
    Checkpoint fresh = get(c.getMetadata().getNamespace(), c.getMetadata().getName());
    fresh.setStatus(
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Running, Reason.Claimed, "claimed by the node agent on " + NODE)
                .node(NODE, "pod-uid")
                .containers(List.of(new CheckpointStatus.ContainerRef("app", ctr.containerId()))),
            Instant.now()));
    test.resource(fresh).updateStatus();
  }

  /**
   * Issue 13: a Migration with the real operator and the real node agent: the agent checkpoints the
   * runc container (leave-running: it keeps counting) and records the pod's sanitized template and
   * the freeze time; the operator creates the Restore and the copy pod for the stasis runtime, its
   * annotation naming the image set the agent stored (fetched and verified here, decoded by crit).
   * The mock server has no kubelet: {@link SimulatedKubelet} reports the copy Ready (the runtime
   * wrapper's own restore is tested in node-agent). Then, and only then, the operator deletes the
   * source pod; the downtime freeze to copy Ready is in the status.
   */
  @Test
  @Order(14)
  void migrationCheckpointsWithTheAgentAndDeletesTheSourceOnlyOnceTheCopyIsReady()
      throws Exception {
    String ns = "e2e-migrate";
    SimulatedKubelet kubelet = new SimulatedKubelet(test);
    kubelet.node("node-target");
    try (RuncContainer ctr = RuncContainer.counter(work)) {
      podAndSecret(ns, ctr);
      Migration m = new Migration();
      m.setMetadata(
          new io.fabric8.kubernetes.api.model.ObjectMetaBuilder()
              .withNamespace(ns)
              .withName("move")
              .build());
      MigrationSpec spec = new MigrationSpec();
      spec.setPodName("web");
      spec.setTargetNode("node-target");
      spec.setTimeoutSeconds(120);
      // One checkpoint after the cut: pre-copy needs a target node's agent staging the parent sets
      // (node-agent RestoreStagingIT, RestoreMigrationMockServerTest); this cluster has only the
      // source's.
      spec.setPreCopy(false);
      CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
      st.setUri("s3://ckpt/k8s");
      st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
      spec.setStorage(st);
      m.setSpec(spec);
      test.resource(m).create();

      // The operator creates the Checkpoint named after the Migration.
      await().atMost(Duration.ofSeconds(30)).until(() -> get(ns, "move") != null);
      Checkpoint c = awaitTerminal(ns, "move");
      assertEquals(Phase.Completed, c.getStatus().phase, c.getStatus().message);
      assertTrue(c.getSpec().effectiveLeaveRunning());
      var tpl = c.getStatus().podTemplate;
      assertEquals("app", tpl.getSpec().getContainers().get(0).getName());
      assertEquals(null, tpl.getSpec().getNodeName(), "the template names no node");
      assertTrue(c.getStatus().frozenAt != null, "the agent records when it froze the pod");
      int lines = ctr.lines();
      await().atMost(Duration.ofSeconds(10)).until(() -> ctr.lines() > lines + 2);

      await()
          .atMost(Duration.ofSeconds(30))
          .until(
              () -> {
                Restore r = test.resources(Restore.class).inNamespace(ns).withName("move").get();
                return r != null
                    && r.getStatus() != null
                    && r.getStatus().phase == RestorePhase.Restoring;
              });
      var copy = test.pods().inNamespace(ns).withName("move").get();
      assertEquals("stasis", copy.getSpec().getRuntimeClassName());
      // the store names its own credentials Secret: the target node's agent stages the images
      // (node-agent RestoreStagingIT), the pod names what it staged
      Restore rst = test.resources(Restore.class).inNamespace(ns).withName("move").get();
      assertEquals(
          "staged:" + rst.getMetadata().getUid() + "/app",
          copy.getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));
      String from = c.getStatus().location + "/app";
      Path images = work.resolve("fetched-migration");
      try (CheckpointStore store =
          CheckpointStore.open(from, StoreOptions.defaults().withS3(s3.config()))) {
        store.fetch(images); // verifies every object's SHA-256 against the manifest
      }
      JsonNode pstree =
          Crit.entries(Crit.decode(Crit.Version.values()[0], images.resolve("pstree.img")));
      assertEquals(1, pstree.get(0).get("pid").asInt(), "the container's init, as PID 1");
      assertTrue(
          test.pods().inNamespace(ns).withName("web").get() != null,
          "the source stays until the copy is Ready");

      kubelet.runReady(ns, "move", "node-target");
      await()
          .atMost(Duration.ofSeconds(30))
          .until(
              () -> {
                Migration x =
                    test.resources(Migration.class).inNamespace(ns).withName("move").get();
                return x.getStatus() != null && x.getStatus().phase == MigrationPhase.Completed;
              });
      Migration done = test.resources(Migration.class).inNamespace(ns).withName("move").get();
      assertEquals(null, test.pods().inNamespace(ns).withName("web").get(), "source deleted");
      assertTrue(done.getStatus().downtimeMillis != null && done.getStatus().downtimeMillis >= 0);
      System.out.println(
          "migration downtime (freeze to copy Ready, kubelet simulated): "
              + done.getStatus().downtimeMillis
              + " ms");
    }
  }

  /**
   * The mock API server does not enforce RBAC; every request it served is recorded, so here each
   * call of the operator and of the agent is checked against the rules the chart grants them (its
   * ClusterRoles and Roles, a Role only in its namespace). And the other way round: every verb the
   * chart grants is one the code was seen to use, so the chart grants no more than the code needs.
   */
  @Test
  @Order(20)
  void operatorAndAgentUseOnlyWhatTheChartGrants() throws Exception {
    var opGrants = Chart.grants("operator", Map.of());
    // This agent runs without restore staging (no STASIS_STAGED_DIR): its grants are checked by
    // the node agent's RestoreStagingIT and HelmChartTest.
    var agentGrants = Chart.grants("node-agent", Map.of("runtime.staging.enabled", "false"));
    List<String> denied = new ArrayList<>();
    List<Chart.ApiCall> opCalls = new ArrayList<>();
    List<Chart.ApiCall> agentCalls = new ArrayList<>();
    RecordedRequest r;
    while ((r = server.getKubernetesMockServer().takeRequest(50, TimeUnit.MILLISECONDS)) != null) {
      String ua = String.valueOf(r.getHeader("User-Agent"));
      if (ua.startsWith(CrdSetup.TEST_UA)) {
        continue;
      }
      Chart.ApiCall call = Chart.ApiCall.of(r.getMethod(), r.getPath());
      boolean isAgent = ua.startsWith(AGENT_UA);
      if (call.resource().equals("selfsubjectrulesreviews") && call.verb().equals("create")) {
        continue; // "what may I do?": every authenticated user may ask (system:basic-user)
      }
      (isAgent ? agentCalls : opCalls).add(call);
      if (!call.allowedByGrants(isAgent ? agentGrants : opGrants)) {
        denied.add((isAgent ? "agent: " : "operator: ") + call + " (user agent " + ua + ")");
      }
    }
    assertTrue(
        opCalls.size() > 10 && agentCalls.size() > 10,
        "requests seen: operator " + opCalls.size() + ", agent " + agentCalls.size());
    assertEquals(List.of(), denied.stream().distinct().toList());
    assertTrue(
        opCalls.stream().anyMatch(c -> c.resource().equals("leases")),
        "the operator elects its leader through a Lease");
    List<String> unused = new ArrayList<>();
    unused.addAll(unused("operator", opGrants, opCalls));
    unused.addAll(unused("agent", agentGrants, agentCalls));
    // The one grant no request uses: the operator SDK's pre-flight check of the Lease rights
    // (SelfSubjectRulesReview) demands "update" although the election renews with PATCH.
    unused.remove("operator: update coordination.k8s.io/leases");
    // A pre-copy Migration's rollback deletes the Checkpoint holding its final freeze
    // (RestoreMigrationMockServerTest); the migration here completes.
    unused.remove("operator: delete stasis.dev/checkpoints");
    assertEquals(List.of(), unused, "granted by the chart but never used by the code");
  }

  /** Every (group, resource, verb) a grant allows that no recorded call of the component used. */
  static List<String> unused(String who, List<Chart.Grant> grants, List<Chart.ApiCall> calls) {
    List<String> out = new ArrayList<>();
    for (Chart.Grant g : grants) {
      for (String group : g.rule().getApiGroups()) {
        for (String res : g.rule().getResources()) {
          for (String verb : g.rule().getVerbs()) {
            boolean used =
                calls.stream()
                    .anyMatch(
                        c ->
                            c.group().equals(group)
                                && c.resource().equals(res)
                                && c.verb().equals(verb)
                                && (g.namespace() == null || g.namespace().equals(c.namespace())));
            if (!used) {
              out.add(who + ": " + verb + " " + (group.isEmpty() ? "" : group + "/") + res);
            }
          }
        }
      }
    }
    return out;
  }

  static String tracer(int pid) throws IOException {
    for (String l : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (l.startsWith("TracerPid:")) {
        return l.substring(10).trim();
      }
    }
    return "?";
  }

  static String b64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  /** Delays each image file so that a deletion lands in the middle of a real dump. */
  static final class SlowSink implements ImageSink {
    static final AtomicInteger created = new AtomicInteger();
    private final ImageSink inner;

    SlowSink(ImageSink inner) {
      this.inner = inner;
    }

    @Override
    public WritableByteChannel create(String name) throws IOException {
      try {
        created.incrementAndGet();
        Thread.sleep(400);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return inner.create(name);
    }

    @Override
    public void recordMetadata(Map<String, String> facts) {
      inner.recordMetadata(facts);
    }

    @Override
    public void commit() throws IOException {
      inner.commit();
    }

    @Override
    public void abort() {
      inner.abort();
    }

    @Override
    public String describe() {
      return inner.describe();
    }

    @Override
    public void close() {
      inner.close();
    }
  }

  /**
   * Creates a held Checkpoint {@code name} of pod "web" in {@code ns} (S3 with the namespace's
   * credentials, 60 s) and waits until it reported ParentStored or ended; returns its uid.
   */
  String createHeldUntilParentStored(String ns, String name) {
    Checkpoint c = Fixtures.checkpoint(ns, name, "web");
    c.getSpec().setHoldFinalFreeze(true);
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://ckpt/k8s");
    st.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3-creds", null));
    c.getSpec().setStorage(st);
    c.getSpec().setTimeoutSeconds(60);
    String uid = test.resource(c).create().getMetadata().getUid();
    await()
        .atMost(Duration.ofSeconds(60))
        .until(
            () -> {
              CheckpointStatus s = get(ns, name).getStatus();
              return s != null
                  && ((s.phase != null && s.phase.terminal())
                      || StatusAggregator.condition(s, StatusAggregator.PARENT_STORED) != null);
            });
    return uid;
  }
}
