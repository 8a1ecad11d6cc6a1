package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStaging;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import dev.stasis.testing.S3Server;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.FileInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restore staging end to end on one node: the fabric8 mock API server (CRUD) as the cluster, the
 * real node agent in-process, S3Proxy as the tenant's store, a real runc container checkpointed by
 * the packaged {@code stasis dump} (zstd, encrypted) into that store, and the runtime wrapper
 * driven as containerd's shim drives it ({@link ShimDriver}) with no store credentials, no key and
 * no command line to fetch with: it can only restore from what the agent staged.
 */
class RestoreStagingIT {
  static final Path REPO = Path.of(System.getProperty("stasis.repo", "..")).toAbsolutePath();
  static final String NODE = "node-1";
  static final String NS = "team-a";
  static final String AGENT_UA = "stasis-node-agent";
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path work;
  KubernetesMockServer server;
  KubernetesClient test;
  KubernetesClient agentClient;
  NodeAgent agent;
  Path staged;
  ShimDriver shim;

  @BeforeEach
  void setUp() throws Exception {
    server =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            new HashMap<>(),
            new NodeSelectingDispatcher(),
            false);
    server.init();
    test = client("stasis-test");
    for (String f : List.of("checkpoints", "restores")) {
      try (var in =
          new FileInputStream(REPO.resolve("crds/" + f + ".stasis.dev-v1.yml").toFile())) {
        test.apiextensions()
            .v1()
            .customResourceDefinitions()
            .resource(
                test.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class))
            .create();
      }
    }
    staged = work.resolve("staged");
    shim = new ShimDriver(work);
  }

  /**
   * The CRUD mock matches field selectors only on metadata.name and metadata.namespace; a real API
   * server serves {@code spec.nodeName} for pods (the kubelet's own watch). Here the selector is
   * ignored, every pod is served, and the agent's own check of each pod's node does the filtering
   * (a pod of another node below shows it). The recorded requests still carry the selector.
   */
  static final class NodeSelectingDispatcher extends KubernetesCrudDispatcher {
    NodeSelectingDispatcher() {
      super(List.of());
    }

    static String strip(String path) {
      return path.replaceAll("fieldSelector=spec\\.nodeName(%3D|=)[^&]*&?", "");
    }

    @Override
    public io.fabric8.mockwebserver.http.MockResponse handleGet(String path) {
      return super.handleGet(strip(path));
    }

    @Override
    public io.fabric8.mockwebserver.http.MockResponse handleWatch(String path) {
      return super.handleWatch(strip(path));
    }
  }

  KubernetesClient client(String userAgent) {
    return new KubernetesClientBuilder()
        .withConfig(
            new ConfigBuilder(server.createClient().getConfiguration())
                .withUserAgent(userAgent)
                .build())
        .build();
  }

  /** The agent as the chart runs it with runtime.staging on; no default-store credentials. */
  void startAgent() {
    agentClient = client(AGENT_UA);
    Map<String, String> env = new TreeMap<>();
    env.put("STASIS_STAGED_DIR", staged.toString());
    env.put("STASIS_STAGE_SWEEP_SECONDS", "1");
    agent =
        new NodeAgent(
                agentClient,
                NODE,
                "s3://node-default",
                env,
                ContainerProcesses.host(),
                ProcessDumper.ENGINE)
            .start();
  }

  @AfterEach
  void tearDown() {
    shim.close();
    if (agent != null) {
      agent.close();
    }
    server.destroy();
  }

  static String b64(String s) {
    return java.util.Base64.getEncoder().encodeToString(s.getBytes());
  }

  void secret(String name, Map<String, String> data) {
    Map<String, String> enc = new TreeMap<>();
    data.forEach((k, v) -> enc.put(k, b64(v)));
    test.resource(
            new SecretBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(NS)
                .endMetadata()
                .withData(enc)
                .build())
        .create();
  }

  static CheckpointSpec.SecretRef ref(String name) {
    return new CheckpointSpec.SecretRef(name, null);
  }

  /** A Completed Checkpoint stored in the tenant's bucket with its own Secrets. */
  Checkpoint checkpoint(String name, String keySecret, String location) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withNamespace(NS).withName(name).build());
    CheckpointSpec spec = new CheckpointSpec();
    spec.setPodName("web");
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://team");
    st.setCredentialsSecretRef(ref("team-creds"));
    spec.setStorage(st);
    spec.setCompression(CheckpointSpec.Compression.zstd);
    CheckpointSpec.EncryptionSpec enc = new CheckpointSpec.EncryptionSpec();
    enc.setKeySecretRef(ref(keySecret));
    spec.setEncryption(enc);
    c.setSpec(spec);
    c = test.resource(c).create();
    c.setStatus(
        StatusAggregator.next(
            null,
            c.getMetadata().getGeneration(),
            Transition.to(Phase.Completed, Reason.Completed, "stored")
                .location(
                    location != null
                        ? location
                        : "s3://team/" + NS + "/" + name + "/" + c.getMetadata().getUid())
                .containers(List.of(new CheckpointStatus.ContainerRef("app", "containerd://x"))),
            Instant.now()));
    return test.resource(c).updateStatus();
  }

  /**
   * A Checkpoint holding its final cut, as the source agent leaves it once the parent sets are
   * stored: {@code holdFinalFreeze}, Running with ParentStored ({@code parentBytes}), its location
   * and {@code containers}.
   */
  Checkpoint holdingCheckpoint(
      String name, String message, long parentBytes, String... containers) {
    Checkpoint c = checkpoint(name, "team-key", null);
    String location = c.getStatus().location;
    c.getSpec().setHoldFinalFreeze(true);
    test.resources(Checkpoint.class).resource(c).update();
    c = test.resources(Checkpoint.class).inNamespace(NS).withName(name).get();
    List<CheckpointStatus.ContainerRef> refs = new ArrayList<>();
    for (String ctr : containers) {
      refs.add(new CheckpointStatus.ContainerRef(ctr, "containerd://" + ctr));
    }
    c.setStatus(
        StatusAggregator.next(
            null,
            c.getMetadata().getGeneration(),
            Transition.to(Phase.Running, Reason.ParentStored, message)
                .location(location)
                .containers(refs)
                .parentStored(Instant.now().toString(), parentBytes),
            Instant.now()));
    return test.resource(c).updateStatus();
  }

  /** A Restore pinned to this node as the operator leaves it while its checkpoint holds. */
  Restore preStagingRestore(String name, String checkpoint) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withNamespace(NS).withName(name).build());
    RestoreSpec spec = new RestoreSpec();
    spec.setCheckpointName(checkpoint);
    spec.setNodeName(NODE);
    r.setSpec(spec);
    r = test.resource(r).create();
    r.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(RestorePhase.Pending, Reason.PreStaging, "held")
                .node(NODE),
            Instant.now()));
    return test.resource(r).updateStatus();
  }

  /** A Restore as the operator leaves it once it created the pod, and that pod on this node. */
  Restore restoreWithPod(String name, String checkpoint) {
    return restoreWithPod(name, checkpoint, NODE);
  }

  Restore restoreWithPod(String name, String checkpoint, String node) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withNamespace(NS).withName(name).build());
    RestoreSpec spec = new RestoreSpec();
    spec.setCheckpointName(checkpoint);
    r.setSpec(spec);
    r = test.resource(r).create();
    r.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(
                    RestorePhase.Restoring, Reason.PodCreated, "pod " + name + " created")
                .pod(name, null)
                .node(node),
            Instant.now()));
    r = test.resource(r).updateStatus();
    pod(name, r.getMetadata().getUid(), node);
    return r;
  }

  /** The Restore's pod as the operator makes it, scheduled on {@code node}. */
  void pod(String name, String uid, String node) {
    pod(name, uid, node, List.of("app"));
  }

  /** The same, with the containers {@code containers}, each restored from its images. */
  void pod(String name, String uid, String node, List<String> containers) {
    PodBuilder b =
        new PodBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(NS)
            .addToAnnotations("stasis.dev/restore", NS + "/" + name)
            .addToAnnotations("stasis.dev/restore-uid", uid)
            .endMetadata()
            .withNewSpec()
            .withNodeName(node)
            .withRuntimeClassName("stasis")
            .endSpec();
    for (String c : containers) {
      b.editMetadata()
          .addToAnnotations("restore-from.stasis.dev/" + c, RestoreStaging.annotation(uid, c))
          .endMetadata()
          .editSpec()
          .addNewContainer()
          .withName(c)
          .withImage("busybox")
          .endContainer()
          .endSpec();
    }
    test.resource(b.build()).create();
  }

  Restore restore(String name) {
    return test.resources(Restore.class).inNamespace(NS).withName(name).get();
  }

  Condition staged(String name) {
    return RestoreStatusAggregator.condition(
        restore(name).getStatus(), RestoreStatusAggregator.STAGED);
  }

  /** The operator ending a Restore (what the agent waits for to clean up). */
  void end(String name, RestorePhase phase, Reason reason) {
    Restore r = restore(name);
    r.setStatus(
        RestoreStatusAggregator.next(
            r.getStatus(),
            1,
            RestoreStatusAggregator.Step.to(phase, reason, "ended by the test"),
            Instant.now()));
    test.resource(r).updateStatus();
  }

  static void await(BooleanSupplier ok, Duration bound, String what) throws InterruptedException {
    long deadline = System.nanoTime() + bound.toNanos();
    while (!ok.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting: " + what);
      }
      Thread.sleep(100);
    }
  }

  List<Event> events(String restore) {
    return test.v1().events().inNamespace(NS).list().getItems().stream()
        .filter(e -> restore.equals(e.getInvolvedObject().getName()))
        .toList();
  }

  /**
   * Also with {@code --pre-copy}: the checkpoint then carries a parent image set
   * (checkpoint/parent/), which the agent stages as {@code parent/} of the container's images and
   * from which runc's CRIU reads the pages the final set marks as in the parent.
   */
  @org.junit.jupiter.params.ParameterizedTest(name = "preCopy={0}")
  @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
  void aCheckpointWithItsOwnSecretsIsStagedOnTheNodeAndRestoredByTheWrapperWithStateIntact(
      boolean preCopy) throws Exception {
    String key = HexFormat.of().formatHex(new byte[32]).replace('0', '7');
    String token = "stage-" + UUID.randomUUID().toString().substring(0, 8);
    String script = counterWithShm(token);
    try (S3Server s3 = S3Server.start().bucket("team");
        RuncContainer ctr = RuncContainer.start(work, script)) {
      tenantSecrets(s3, key);
      secret("wrong-key", Map.of("key", HexFormat.of().formatHex(new byte[32]).replace('0', '3')));
      Checkpoint good = checkpoint("c1", "team-key", null);
      // the same stored images, with a key Secret that holds another key
      checkpoint("c2", "wrong-key", good.getStatus().location);

      // The tenant's checkpoint: zstd and encrypted, in the tenant's bucket with its credentials.
      ShimDriver.awaitLines(ctr.log(), 5);
      Path keyFile = work.resolve("key");
      Files.writeString(keyFile, key);
      String to = good.getStatus().location + "/app";
      String out =
          Exec.ok(
              Duration.ofSeconds(180),
              ShimDriver.withEnv(
                  s3.env(),
                  withPreCopy(
                      preCopy,
                      shim.cli().toString(),
                      "dump",
                      "--pid",
                      Integer.toString(ctr.hostPid()),
                      "--to",
                      to,
                      "--compress",
                      "zstd",
                      "--encryption-key-file",
                      keyFile.toString())));
      assertTrue(out.lines().anyMatch(l -> l.startsWith("dumped PID " + ctr.hostPid() + " ")), out);
      int before = ShimDriver.lastNumber(ctr.log());
      Path bundle = shim.bundleOf(ctr, "restored");
      ctr.delete();

      startAgent();
      Restore r = restoreWithPod("back", "c1");
      String uid = r.getMetadata().getUid();
      await(
          () -> {
            Condition c = staged("back");
            return c != null && !c.getReason().equals("Staging");
          },
          Duration.ofSeconds(120),
          "Staged condition of back");
      Condition c = staged("back");
      assertEquals("True", c.getStatus(), c.getMessage());
      assertEquals("Staged", c.getReason());
      assertTrue(c.getMessage().startsWith("app staged on node " + NODE + " ("), c.getMessage());
      assertEquals(RestorePhase.Restoring, restore("back").getStatus().phase, "phase untouched");
      Path dir = staged.resolve(uid);
      assertTrue(Files.isDirectory(dir.resolve("app")), "staged images in place");
      assertTrue(Files.exists(dir.resolve("app/inventory.img")), "verified images");
      assertEquals(
          preCopy,
          Files.isRegularFile(dir.resolve("app/parent/pagemap-1.img")),
          "the parent image set staged with the images");
      assertEquals(NS + "/back", Files.readString(dir.resolve("pod")).strip());
      try (var l = Files.list(dir)) {
        assertEquals(
            Set.of("app", "pod"),
            new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()),
            "no temporary directory left");
      }
      await(
          () -> events("back").stream().anyMatch(e -> e.getReason().equals("Staged")),
          Duration.ofSeconds(10),
          "Staged event");

      Map<String, String> env = restoreWithTheWrapper(bundle, uid, "back", before, token);
      assertTrue(
          Files.isDirectory(dir.resolve("app")), "the staged set stays for a retried create");

      // Another pod naming the same staged images is refused.
      Path intruder = shim.bundleOf(bundle, "intruder");
      shim.annotate(
          intruder,
          Map.of(
              "io.kubernetes.cri.container-name", "app",
              "io.kubernetes.cri.sandbox-namespace", "team-b",
              "io.kubernetes.cri.sandbox-name", "back",
              "restore-from.stasis.dev/app", RestoreStaging.annotation(uid, "app")));
      Exec.Result refused = shim.create(env, work.resolve("intruder.json"), intruder, "intruder");
      assertEquals(1, refused.exit(), refused.output());
      assertEquals(1, refused.output().strip().lines().count(), refused.output());
      assertTrue(
          refused
              .output()
              .contains(
                  "are for pod " + NS + "/back, not for this container's pod" + " team-b/back"),
          refused.output());

      // The Restore ends: nothing is left on the node.
      end("back", RestorePhase.Completed, Reason.RestoredPodReady);
      await(() -> !Files.exists(dir), Duration.ofSeconds(30), "staged dir removed");

      // A pod of another node is that node's agent's to stage.
      String elsewhere = restoreWithPod("elsewhere", "c1", "node-2").getMetadata().getUid();

      // A wrong key Secret: a failed stage with one line, and create fails at once with it.
      restoreWithPod("bad", "c2");
      String badUid = restore("bad").getMetadata().getUid();
      await(
          () -> {
            Condition x = staged("bad");
            return x != null && x.getReason().equals("StageFailed");
          },
          Duration.ofSeconds(120),
          "StageFailed on bad");
      Condition failed = staged("bad");
      assertEquals("False", failed.getStatus());
      assertEquals(1, failed.getMessage().lines().count(), failed.getMessage());
      assertTrue(failed.getMessage().contains("key"), failed.getMessage());
      // the agent posts the Event right after the status update: wait for it, bounded
      await(
          () ->
              events("bad").stream()
                  .anyMatch(
                      e -> e.getReason().equals("StageFailed") && e.getType().equals("Warning")),
          Duration.ofSeconds(10),
          "StageFailed event");
      assertFalse(Files.exists(staged.resolve(badUid + "/app")), "nothing staged");
      assertFalse(Files.exists(staged.resolve(elsewhere)), "another node's pod");
      assertEquals(null, staged("elsewhere"), "not touched by this node's agent");
      Path badBundle = shim.bundleOf(bundle, "bad");
      shim.annotate(
          badBundle,
          Map.of(
              "io.kubernetes.cri.container-name",
              "app",
              "io.kubernetes.cri.sandbox-namespace",
              NS,
              "io.kubernetes.cri.sandbox-name",
              "bad",
              "restore-from.stasis.dev/app",
              RestoreStaging.annotation(badUid, "app")));
      long t0 = System.nanoTime();
      Exec.Result bad = shim.create(env, work.resolve("bad.json"), badBundle, "bad-" + badUid);
      assertTrue(System.nanoTime() - t0 < Duration.ofSeconds(20).toNanos(), "no waiting");
      assertEquals(1, bad.exit(), bad.output());
      List<String> lines = bad.output().strip().lines().toList();
      assertEquals(1, lines.size(), bad.output());
      assertEquals(
          "stasis-runc: cannot restore container bad-"
              + badUid
              + " from staged:"
              + badUid
              + "/app: the node agent could not stage the images: "
              + failed.getMessage(),
          lines.get(0));
      assertFalse(Files.exists(shim.root().resolve("bad-" + badUid)), "no runc state");
      end("bad", RestorePhase.Failed, Reason.StageFailed);
      await(
          () -> !Files.exists(staged.resolve(badUid)),
          Duration.ofSeconds(30),
          "failed stage removed");

      // Images that never come: create waits its bounded time, then fails with one line.
      Path late = shim.bundleOf(bundle, "late");
      String lateUid = UUID.randomUUID().toString();
      shim.annotate(
          late,
          Map.of(
              "io.kubernetes.cri.container-name",
              "app",
              "io.kubernetes.cri.sandbox-namespace",
              NS,
              "io.kubernetes.cri.sandbox-name",
              "late",
              "restore-from.stasis.dev/app",
              RestoreStaging.annotation(lateUid, "app")));
      env.put("STASIS_STAGE_WAIT_SECONDS", "2");
      Exec.Result notYet = shim.create(env, work.resolve("late.json"), late, "late");
      assertEquals(1, notYet.exit(), notYet.output());
      assertEquals(1, notYet.output().strip().lines().count(), notYet.output());
      assertTrue(notYet.output().contains(RestoreStaging.NOT_READY), notYet.output());

      assertAgentCallsAreTheStagingOnes();
    }
  }

  /**
   * The wrapper as containerd's shim drives it, with no credentials, no key and no command line: it
   * can only restore {@code pod}'s container from what the agent staged for {@code uid}. The
   * restored counter goes on from at least {@code before}, with its state ({@code token}) intact.
   * Returns the wrapper's environment.
   */
  Map<String, String> restoreWithTheWrapper(
      Path bundle, String uid, String pod, int before, String token) throws Exception {
    Map<String, String> env = new TreeMap<>();
    env.put("STASIS_STAGED_DIR", staged.toString());
    env.put("STASIS_CLI", "/nonexistent/stasis");
    env.put("STASIS_CRIU_DIR", Crit.JUDGE.resolve("bin").toString());
    shim.annotate(
        bundle,
        Map.of(
            "io.kubernetes.cri.container-name",
            "app",
            "io.kubernetes.cri.sandbox-namespace",
            NS,
            "io.kubernetes.cri.sandbox-name",
            pod,
            "restore-from.stasis.dev/app",
            RestoreStaging.annotation(uid, "app")));
    String id = pod + "-" + ProcessHandle.current().pid();
    Path log = work.resolve(pod + "-restored.json");
    Path stdout = work.resolve(pod + "-restored.out");
    Exec.Result created = shim.createOnPipes(env, log, stdout, bundle, id);
    assertEquals(0, created.exit(), created.output() + ShimDriver.read(log));
    int pid = Integer.parseInt(Files.readString(bundle.resolve("pid")).strip());
    Exec.Result started = shim.wrapper(env, log, "start", id);
    assertEquals(0, started.exit(), started.output());
    JsonNode state = JSON.readTree(shim.wrapper(env, log, "state", id).output());
    assertEquals("running", state.get("status").asText(), state.toString());
    assertEquals(pid, state.get("pid").asInt());
    ShimDriver.awaitLines(stdout, 5);
    List<String> restored =
        ShimDriver.lines(stdout).stream().filter(l -> l.matches("[0-9]+ .*")).toList();
    int first = Integer.parseInt(restored.get(0).split(" ")[0]);
    assertTrue(first >= before, "restored counter starts at " + first + "; " + before + " before");
    for (int i = 0; i < restored.size(); i++) {
      assertEquals((first + i) + " " + token, restored.get(i), "line " + i + " after restore");
    }
    assertEquals(0, shim.wrapper(env, log, "kill", id, "KILL").exit());
    shim.awaitStopped(id);
    assertEquals(0, shim.wrapper(env, log, "delete", id).exit());
    return env;
  }

  /**
   * A Migration's pre-copy on the target node (MIGPRE.md step 4): the Checkpoint holds its final
   * cut with only the parent image set stored (the manifest and the final images are hidden from
   * the store, as they are not written yet); the agent stages the parent set for the Restore before
   * any pod exists and reports ParentStaged. Then the final cut lands, the parent objects are
   * removed from the store (so a second download of them would fail), and the pod's staging fetches
   * only the final set and verifies the pre-staged parent with it; the wrapper restores the counter
   * with its state; the Restore's end removes everything.
   */
  @org.junit.jupiter.api.Test
  void aMigrationsParentSetsArePreStagedBeforeThePodAndOnlyTheFinalSetIsFetchedAfter()
      throws Exception {
    String key = HexFormat.of().formatHex(new byte[32]).replace('0', '5');
    String token = "pre-" + UUID.randomUUID().toString().substring(0, 8);
    String script = counterWithShm(token);
    try (S3Server s3 = S3Server.start().bucket("team");
        RuncContainer ctr = RuncContainer.start(work, script)) {
      tenantSecrets(s3, key);
      // as the source agent leaves it while it holds: parent sets stored, final cut to come
      Checkpoint c = holdingCheckpoint("held", "parent sets stored", 1, "app");
      String location = c.getStatus().location;

      ShimDriver.awaitLines(ctr.log(), 5);
      Path keyFile = work.resolve("key");
      Files.writeString(keyFile, key);
      Exec.ok(
          Duration.ofSeconds(180),
          ShimDriver.withEnv(
              s3.env(),
              List.of(
                  shim.cli().toString(),
                  "dump",
                  "--pid",
                  Integer.toString(ctr.hostPid()),
                  "--to",
                  location + "/app",
                  "--pre-copy",
                  "--compress",
                  "zstd",
                  "--encryption-key-file",
                  keyFile.toString())));
      int before = ShimDriver.lastNumber(ctr.log());
      Path bundle = shim.bundleOf(ctr, "restored");
      ctr.delete();
      // Only the parent set is in the store before the final cut: hide the rest.
      Path app =
          s3.dataDir().resolve("team").resolve(location.substring("s3://team/".length()) + "/app");
      Path hidden = s3.dataDir().getParent().resolve("final-cut");
      List<Path> finals = new ArrayList<>();
      try (var l = Files.list(app.resolve("checkpoint"))) {
        // the parent manifest was stored with the parent set, before ParentStored: it stays
        l.filter(Files::isRegularFile)
            .filter(f -> !f.getFileName().toString().equals("parent.manifest.json"))
            .forEach(finals::add);
      }
      assertTrue(Files.isRegularFile(app.resolve("checkpoint/parent.manifest.json")));
      finals.add(app.resolve("manifest.json"));
      Files.createDirectories(hidden);
      for (Path f : finals) {
        Files.move(f, hidden.resolve(f.getFileName()));
      }
      List<Path> parents;
      try (var l = Files.list(app.resolve("checkpoint/parent"))) {
        parents = l.toList();
      }
      assertFalse(parents.isEmpty());

      startAgent();
      // A tampered parent object fails the pre-stage (ParentStaged False, one line naming it).
      Path victim = parents.stream().max(java.util.Comparator.comparing(Path::toString)).get();
      byte[] good = Files.readAllBytes(victim);
      byte[] bad = good.clone();
      bad[bad.length / 2] ^= 1;
      Files.write(victim, bad);
      Restore br = preStagingRestore("mig-bad", "held");
      await(
          () -> RestoreStatusAggregator.parentStageFailure(restore("mig-bad").getStatus()) != null,
          Duration.ofSeconds(120),
          "ParentStaged=False of mig-bad");
      String badWhy = RestoreStatusAggregator.parentStageFailure(restore("mig-bad").getStatus());
      assertEquals(1, badWhy.lines().count(), badWhy);
      String victimName = victim.getFileName().toString();
      assertTrue(
          badWhy.contains(
                  "checkpoint/parent/" + victimName.substring(0, victimName.indexOf(".img")))
              && (badWhy.contains("failed verification") || badWhy.contains("authentication")),
          badWhy);
      assertFalse(
          Files.exists(staged.resolve(br.getMetadata().getUid()).resolve("app.parent")),
          "nothing pre-staged for mig-bad");
      Files.write(victim, good);

      Restore r = preStagingRestore("mig", "held");
      String uid = r.getMetadata().getUid();
      Path dir = staged.resolve(uid);
      await(
          () ->
              RestoreStatusAggregator.condition(
                      restore("mig").getStatus(), RestoreStatusAggregator.PARENT_STAGED)
                  != null,
          Duration.ofSeconds(120),
          "ParentStaged condition of mig");
      Condition pc =
          RestoreStatusAggregator.condition(
              restore("mig").getStatus(), RestoreStatusAggregator.PARENT_STAGED);
      assertEquals("True", pc.getStatus(), pc.getMessage());
      assertEquals("ParentStaged", pc.getReason());
      assertTrue(restore("mig").getStatus().parentStagedAt != null);
      assertEquals(RestorePhase.Pending, restore("mig").getStatus().phase, "phase untouched");
      assertEquals(null, staged("mig"), "the pod's staging has not started");
      try (var l = Files.list(dir)) {
        assertEquals(
            Set.of("app.parent"),
            new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()),
            "only the parent set, in place, no temporary directory, no pod yet");
      }
      // verified plaintext before the final manifest exists (it is still hidden), with the parent
      // manifest it was verified against
      assertFalse(Files.exists(app.resolve("manifest.json")));
      assertEquals(
          Set.of("parent", "parent.manifest.json"),
          new TreeSet<>(
              Files.list(dir.resolve("app.parent")).map(x -> x.getFileName().toString()).toList()));
      try (var l = Files.list(dir.resolve("app.parent/parent"))) {
        assertEquals(
            new TreeSet<>(
                parents.stream()
                    .map(x -> x.getFileName().toString().replace(".zst", "").replace(".aes", ""))
                    .toList()),
            new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()),
            "every parent object, decoded");
      }
      byte[] preStagedPagemap = Files.readAllBytes(dir.resolve("app.parent/parent/pagemap-1.img"));
      // a decoded CRIU image: it starts with the image-set magic (0x54564319, little endian)
      assertEquals(
          0x54564319,
          java.nio.ByteBuffer.wrap(preStagedPagemap)
              .order(java.nio.ByteOrder.LITTLE_ENDIAN)
              .getInt(0));
      await(
          () -> events("mig").stream().anyMatch(e -> e.getReason().equals("ParentStaged")),
          Duration.ofSeconds(10),
          "ParentStaged event");

      // A held checkpoint with no parent set in the store (the source had no live copy of its
      // container): nothing to pre-stage, ParentStaged True naming it; its images come after the
      // cut.
      holdingCheckpoint("empty", "parent sets stored", 1, "app");
      Restore er = preStagingRestore("mig-empty", "empty");
      await(
          () ->
              RestoreStatusAggregator.condition(
                      restore("mig-empty").getStatus(), RestoreStatusAggregator.PARENT_STAGED)
                  != null,
          Duration.ofSeconds(60),
          "ParentStaged of mig-empty");
      Condition ec =
          RestoreStatusAggregator.condition(
              restore("mig-empty").getStatus(), RestoreStatusAggregator.PARENT_STAGED);
      assertEquals("True", ec.getStatus(), ec.getMessage());
      assertTrue(
          ec.getMessage().startsWith("no parent image set to stage from ")
              && ec.getMessage().endsWith("; app has no parent set: fetched whole at the cut"),
          ec.getMessage());
      assertFalse(
          Files.exists(staged.resolve(er.getMetadata().getUid()).resolve("app.parent")),
          "nothing pre-staged for mig-empty");

      // The final cut lands; the parent objects leave the store: they must not be fetched again.
      for (Path f : finals) {
        Files.move(hidden.resolve(f.getFileName()), f);
      }
      for (Path f : parents) {
        Files.delete(f);
      }
      c = test.resources(Checkpoint.class).inNamespace(NS).withName("held").get();
      c.setStatus(
          StatusAggregator.next(
              c.getStatus(),
              c.getMetadata().getGeneration(),
              Transition.to(Phase.Completed, Reason.Completed, "stored").location(location),
              Instant.now()));
      test.resource(c).updateStatus();
      r = restore("mig");
      r.setStatus(
          RestoreStatusAggregator.next(
              r.getStatus(),
              1,
              RestoreStatusAggregator.Step.to(
                      RestorePhase.Restoring, Reason.PodCreated, "pod mig created")
                  .pod("mig", null)
                  .node(NODE),
              Instant.now()));
      test.resource(r).updateStatus();
      pod("mig", uid, NODE);
      await(
          () -> {
            Condition x = staged("mig");
            return x != null && !x.getReason().equals("Staging");
          },
          Duration.ofSeconds(120),
          "Staged condition of mig");
      Condition sc = staged("mig");
      assertEquals("True", sc.getStatus(), sc.getMessage());
      assertTrue(
          sc.getMessage().contains("of them from the pre-staged parent sets"), sc.getMessage());
      assertArrayEquals(
          preStagedPagemap,
          Files.readAllBytes(dir.resolve("app/parent/pagemap-1.img")),
          "the pre-staged parent moved in");
      try (var l = Files.list(dir)) {
        assertEquals(
            Set.of("app", "pod"),
            new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()),
            "the pre-staged objects moved in, nothing else left");
      }

      restoreWithTheWrapper(bundle, uid, "mig", before, token);

      end("mig", RestorePhase.Completed, Reason.RestoredPodReady);
      await(() -> !Files.exists(dir), Duration.ofSeconds(30), "staged dir removed");
    }
  }

  /**
   * A Migration's pre-copy where the source had a live copy of {@code app} but none of {@code side}
   * (a kernel without userfaultfd write-protection, or its tracking failed): app's parent set and
   * parent manifest are in the store, side has stored nothing before the cut. The target's agent
   * pre-stages app's parent (verified), skips side and reports ParentStaged True naming it, so the
   * source may take its cut instead of the Migration rolling back. After the cut the pod's staging
   * moves app's pre-staged parent in and fetches side whole.
   */
  @org.junit.jupiter.api.Test
  void aContainerWithoutAParentSetIsNotPreStagedButFetchedWholeAfterTheCut() throws Exception {
    String key = HexFormat.of().formatHex(new byte[32]).replace('0', '7');
    try (S3Server s3 = S3Server.start().bucket("team")) {
      tenantSecrets(s3, key);
      Checkpoint c =
          holdingCheckpoint("held-side", "parent set of app stored", 3 * 4096, "app", "side");
      String location = c.getStatus().location;
      // the source agent's stores, as it opens them (zstd, the tenant's key)
      StoreResolver source = new StoreResolver(test, "s3://node-default", Map.of());
      byte[] parentPages = dev.stasis.storage.SyntheticImages.bytes(9, 3 * 4096);
      Map<String, byte[]> sideFiles;
      String uid;
      try (dev.stasis.storage.CheckpointStore as = source.open(c, "app");
          dev.stasis.images.ImageSink app = as.newCheckpoint();
          dev.stasis.storage.CheckpointStore ss = source.open(c, "side");
          dev.stasis.images.ImageSink side = ss.newCheckpoint()) {
        try (var ch = app.create("parent/pages-1.img")) {
          ch.write(java.nio.ByteBuffer.wrap(parentPages));
        }
        app.syncParent(); // side has no live copy: no parent set, nothing stored yet

        startAgent();
        Restore r = preStagingRestore("mig-side", "held-side");
        uid = r.getMetadata().getUid();
        await(
            () ->
                RestoreStatusAggregator.condition(
                        restore("mig-side").getStatus(), RestoreStatusAggregator.PARENT_STAGED)
                    != null,
            Duration.ofSeconds(60),
            "ParentStaged condition of mig-side");
        Condition pc =
            RestoreStatusAggregator.condition(
                restore("mig-side").getStatus(), RestoreStatusAggregator.PARENT_STAGED);
        assertEquals("True", pc.getStatus(), pc.getMessage());
        assertEquals(
            "parent image sets of app staged on node "
                + NODE
                + " ("
                + parentPages.length
                + " bytes verified) from "
                + location
                + "; side has no parent set: fetched whole at the cut",
            pc.getMessage());
        try (var l = Files.list(staged.resolve(uid))) {
          assertEquals(
              Set.of("app.parent"),
              new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()),
              "app's parent only, nothing for side, no temporary directory");
        }
        // the cut: each container's final set
        dev.stasis.storage.SyntheticImages.write(app, 8192);
        app.commit();
        sideFiles = dev.stasis.storage.SyntheticImages.write(side, 5 * 4096);
        side.commit();
      }
      c = test.resources(Checkpoint.class).inNamespace(NS).withName("held-side").get();
      c.setStatus(
          StatusAggregator.next(
              c.getStatus(),
              c.getMetadata().getGeneration(),
              Transition.to(Phase.Completed, Reason.Completed, "stored").location(location),
              Instant.now()));
      test.resource(c).updateStatus();
      Restore r = restore("mig-side");
      r.setStatus(
          RestoreStatusAggregator.next(
              r.getStatus(),
              1,
              RestoreStatusAggregator.Step.to(
                      RestorePhase.Restoring, Reason.PodCreated, "pod mig-side created")
                  .pod("mig-side", null)
                  .node(NODE),
              Instant.now()));
      test.resource(r).updateStatus();
      pod("mig-side", uid, NODE, List.of("app", "side"));
      await(
          () -> {
            Condition x = staged("mig-side");
            return x != null && !x.getReason().equals("Staging");
          },
          Duration.ofSeconds(60),
          "Staged condition of mig-side");
      Condition sc = staged("mig-side");
      assertEquals("True", sc.getStatus(), sc.getMessage());
      assertTrue(
          sc.getMessage().contains(parentPages.length + " of them from the pre-staged parent sets"),
          sc.getMessage());
      Path dir = staged.resolve(uid);
      assertArrayEquals(parentPages, Files.readAllBytes(dir.resolve("app/parent/pages-1.img")));
      for (var e : sideFiles.entrySet()) {
        assertArrayEquals(
            e.getValue(), Files.readAllBytes(dir.resolve("side").resolve(e.getKey())), e.getKey());
      }
      assertFalse(Files.exists(dir.resolve("side/parent")), "side has no parent");
      try (var l = Files.list(dir)) {
        assertEquals(
            Set.of("app", "side", "pod"),
            new TreeSet<>(l.map(x -> x.getFileName().toString()).toList()));
      }
    }
  }

  /**
   * What the agent asked the API server, by (verb, resource): the chart grants exactly these
   * (HelmChartTest checks the chart's side of this list).
   */
  private static List<String> withPreCopy(boolean preCopy, String... cmd) {
    List<String> out = new ArrayList<>(List.of(cmd));
    if (preCopy) {
      out.add("--pre-copy");
    }
    return out;
  }

  void assertAgentCallsAreTheStagingOnes() throws InterruptedException {
    Set<String> seen = new TreeSet<>();
    RecordedRequest q;
    while ((q = server.takeRequest(50, TimeUnit.MILLISECONDS)) != null) {
      if (!String.valueOf(q.getHeader("User-Agent")).startsWith(AGENT_UA)) {
        continue;
      }
      String path = q.getPath();
      String p = path.contains("?") ? path.substring(0, path.indexOf('?')) : path;
      String query = path.contains("?") ? path.substring(path.indexOf('?') + 1) : "";
      String[] s = p.split("/");
      boolean named =
          p.matches(".*/namespaces/[^/]+/[^/]+/[^/]+(/status)?$") && !p.endsWith("/namespaces");
      String resource =
          p.endsWith("/status")
              ? s[s.length - 3] + "/status"
              : named ? s[s.length - 2] : s[s.length - 1];
      String verb =
          switch (q.getMethod()) {
            case "GET" -> query.contains("watch=true") ? "watch" : named ? "get" : "list";
            case "POST" -> "create";
            case "PUT" -> "update";
            case "PATCH" -> "patch";
            default -> q.getMethod().toLowerCase();
          };
      seen.add(verb + " " + resource);
      if (resource.equals("pods") && !verb.equals("get")) {
        assertTrue(
            java.net.URLDecoder.decode(query, java.nio.charset.StandardCharsets.UTF_8)
                .contains("fieldSelector=spec.nodeName=" + NODE),
            "pods of this node only: " + path);
      }
    }
    Set<String> staging =
        Set.of(
            "list pods",
            "watch pods",
            "list restores",
            "watch restores",
            "get restores",
            "update restores/status",
            "get checkpoints",
            "get secrets",
            "create events");
    List<String> extra = new ArrayList<>();
    for (String x : seen) {
      if (!staging.contains(x) && !x.endsWith(" checkpoints")) {
        extra.add(x);
      }
    }
    assertEquals(List.of(), extra, "calls beyond the staging grants: " + seen);
    assertTrue(seen.containsAll(staging), "every staging grant used: " + seen);
  }

  /**
   * A counter that prints its count and the token it wrote into its /dev/shm (state a restore must
   * carry: the tmpfs file and the shell's variable) every 0.1 s.
   */
  static String counterWithShm(String token) {
    return "echo "
        + token
        + " > /dev/shm/f; i=0; while :; do read -t 0.1 x; i=$((i+1)); read s < /dev/shm/f;"
        + " echo $i $s; done";
  }

  /** The tenant's S3 credentials (team-creds, for {@code s3}) and image key (team-key) Secrets. */
  void tenantSecrets(S3Server s3, String key) {
    secret(
        "team-creds",
        Map.of(
            "accessKey", S3Server.ACCESS_KEY,
            "secretKey", S3Server.SECRET_KEY,
            "endpoint", s3.endpoint()));
    secret("team-key", Map.of("key", key));
  }
}
