package dev.stasis.operator;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationPhase;
import dev.stasis.crds.MigrationSpec;
import dev.stasis.crds.MigrationStatusAggregator;
import dev.stasis.crds.Phase;
import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The real operator's Restore and Migration flows against the fabric8 mock API server (CRUD). The
 * mock has no scheduler, kubelet or node agent: {@link SimulatedKubelet} writes what a kubelet
 * would report for the pods the operator creates, and {@link #agentCompletes} writes a Checkpoint's
 * result through the same aggregator the node agent uses. (CheckpointEndToEndIT runs a migration
 * with the real agent and a real runc container.)
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = CrdSetup.class)
class RestoreMigrationMockServerTest {
  @Inject KubernetesClient client;
  SimulatedKubelet kubelet;
  static boolean nodes;

  @BeforeEach
  void setUp() {
    kubelet = new SimulatedKubelet(client);
    if (!nodes) {
      kubelet.node("n1");
      kubelet.node("n2");
      nodes = true;
    }
  }

  // ---------------------------------------------------------------- Restore

  /** A Checkpoint as the node agent leaves it: Completed, with its pod template and location. */
  Checkpoint completedCheckpoint(String ns, String name, Pod of, Consumer<Transition> extra) {
    client.resource(of).createOr(x -> x.update());
    Checkpoint c = Fixtures.checkpoint(ns, name, of.getMetadata().getName());
    c = client.resource(c).create();
    Transition t =
        Transition.to(Phase.Completed, Reason.Completed, "stored")
            .location("s3://stasis-test/checkpoints/" + ns + "/" + name + "/uid")
            .containers(List.of(new CheckpointStatus.ContainerRef("app", "containerd://x")))
            .podTemplate(PodTemplates.sanitize(of))
            .frozenAt(Instant.now());
    extra.accept(t);
    writeCheckpointStatus(ns, name, t);
    return get(Checkpoint.class, ns, name);
  }

  /** Writes a checkpoint result as the agent would (claimed first, so the operator stays out). */
  void writeCheckpointStatus(String ns, String name, Transition t) {
    await()
        .atMost(Duration.ofSeconds(15))
        .ignoreException(KubernetesClientException.class)
        .until(
            () -> {
              Checkpoint c = get(Checkpoint.class, ns, name);
              if (c.getMetadata().getAnnotations() == null
                  || !c.getMetadata().getAnnotations().containsKey(Labels.CLAIM)) {
                var ann =
                    new HashMap<>(
                        c.getMetadata().getAnnotations() == null
                            ? Map.<String, String>of()
                            : c.getMetadata().getAnnotations());
                ann.put(Labels.CLAIM, "simulated/agent");
                c.getMetadata().setAnnotations(ann);
                c = client.resource(c).update();
              }
              c.setStatus(
                  StatusAggregator.next(
                      c.getStatus(), c.getMetadata().getGeneration(), t, Instant.now()));
              client.resource(c).updateStatus();
              return true;
            });
  }

  Restore restore(String ns, String name, Consumer<RestoreSpec> edit) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withNamespace(ns).withName(name).build());
    r.setSpec(new RestoreSpec());
    edit.accept(r.getSpec());
    return client.resource(r).create();
  }

  <T extends io.fabric8.kubernetes.api.model.HasMetadata> T get(Class<T> k, String ns, String n) {
    return client.resources(k).inNamespace(ns).withName(n).get();
  }

  Restore awaitRestore(String ns, String name, RestorePhase phase) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Restore r = get(Restore.class, ns, name);
              return r != null && r.getStatus() != null && r.getStatus().phase == phase;
            });
    return get(Restore.class, ns, name);
  }

  static String reason(Restore r) {
    return RestoreStatusAggregator.condition(r.getStatus(), "Ready").getReason();
  }

  @Test
  void restoreCreatesThePodForTheRuntimeAndCompletesWhenItIsReady() {
    String ns = "rst-ok";
    Pod src = Fixtures.runningPod(ns, "web", "n1", "app", "containerd://a1");
    src.getMetadata().setLabels(Map.of("app", "web"));
    Checkpoint c = completedCheckpoint(ns, "c1", src, t -> {});
    restore(
        ns,
        "r1",
        s -> {
          s.setCheckpointName("c1");
          s.setNodeName("n2");
          s.setPodName("web-restored");
          s.setPodLabels(Map.of("app", "web-copy"));
        });
    Restore r = awaitRestore(ns, "r1", RestorePhase.Restoring);
    assertEquals("web-restored", r.getStatus().podName);
    assertEquals("PodCreated", reason(r));
    Pod pod = client.pods().inNamespace(ns).withName("web-restored").get();
    assertEquals("stasis", pod.getSpec().getRuntimeClassName());
    assertEquals(
        c.getStatus().location + "/app",
        pod.getMetadata().getAnnotations().get("restore-from.stasis.dev/app"),
        "each container's image set, under a key naming the container");
    assertEquals(ns + "/r1", pod.getMetadata().getAnnotations().get("stasis.dev/restore"));
    assertEquals(Map.of("app", "web-copy"), pod.getMetadata().getLabels());
    assertNull(pod.getSpec().getNodeName(), "placed by the scheduler, pinned by affinity");
    var term =
        pod.getSpec()
            .getAffinity()
            .getNodeAffinity()
            .getRequiredDuringSchedulingIgnoredDuringExecution()
            .getNodeSelectorTerms()
            .get(0)
            .getMatchFields()
            .get(0);
    assertEquals("metadata.name", term.getKey());
    assertEquals(List.of("n2"), term.getValues());
    assertEquals("busybox", pod.getSpec().getContainers().get(0).getImage());

    kubelet.runReady(ns, "web-restored", "n2");
    r = awaitRestore(ns, "r1", RestorePhase.Completed);
    assertEquals("RestoredPodReady", reason(r));
    assertEquals("n2", r.getStatus().nodeName);
    assertNotNull(r.getStatus().readyAt);
    var ready = RestoreStatusAggregator.condition(r.getStatus(), "Ready");
    assertEquals("True", ready.getStatus());
    assertEquals(r.getMetadata().getGeneration(), ready.getObservedGeneration());
    assertTrue(
        client.v1().events().inNamespace(ns).list().getItems().stream()
            .anyMatch(e -> "RestoredPodReady".equals(e.getReason())));
  }

  @Test
  void restoredPodThatCannotStartFailsWithTheRuntimesLine() {
    String ns = "rst-fail";
    completedCheckpoint(
        ns, "c1", Fixtures.runningPod(ns, "web", "n1", "app", "containerd://b"), t -> {});
    restore(ns, "r1", s -> s.setCheckpointName("c1"));
    awaitRestore(ns, "r1", RestorePhase.Restoring);
    kubelet.containerWaiting(
        ns,
        "r1",
        "n1",
        "CreateContainerError",
        "stasis-runc: cannot restore container abc from s3://x: manifest missing");
    Restore r = awaitRestore(ns, "r1", RestorePhase.Failed);
    assertEquals("RestoredPodFailed", reason(r));
    assertTrue(
        r.getStatus().message.contains("stasis-runc: cannot restore"), r.getStatus().message);
    assertEquals("True", RestoreStatusAggregator.condition(r.getStatus(), "Accepted").getStatus());
  }

  @Test
  void badRestoresFailWithTheirReasonAndCreateNoPod() {
    String ns = "rst-bad";
    Pod src = Fixtures.runningPod(ns, "web", "n1", "app", "containerd://c");
    completedCheckpoint(ns, "done", src, t -> {});
    completedCheckpoint(
        ns, "unrestorable", src, t -> t.restorability(List.of("container 'app': a tty")));
    Checkpoint running = client.resource(Fixtures.checkpoint(ns, "running", "nope")).create();
    assertNotNull(running);
    client
        .resource(
            new SecretBuilder()
                .withNewMetadata()
                .withNamespace("elsewhere")
                .withName("s3")
                .endMetadata()
                .build())
        .create();
    client
        .pods()
        .resource(Fixtures.runningPod(ns, "taken", "n1", "app", "containerd://d"))
        .create();

    restore(ns, "no-ckpt", s -> s.setCheckpointName("missing"));
    restore(ns, "not-done", s -> s.setCheckpointName("running"));
    restore(ns, "not-restorable", s -> s.setCheckpointName("unrestorable"));
    restore(
        ns,
        "no-node",
        s -> {
          s.setCheckpointName("done");
          s.setNodeName("n9");
        });
    restore(ns, "taken", s -> s.setCheckpointName("done"));
    var tpl = PodTemplates.sanitize(src);
    restore(
        ns,
        "other-ns-secret",
        s -> {
          s.setUri("s3://bucket/x");
          s.setTemplate(tpl);
          s.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3", "elsewhere"));
        });
    restore(
        ns,
        "no-secret",
        s -> {
          s.setUri("s3://bucket/x");
          s.setTemplate(tpl);
          s.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3", null));
        });
    expectFailed(ns, "no-ckpt", "CheckpointNotFound", "rst-bad/missing not found");
    expectFailed(ns, "not-done", "CheckpointNotCompleted", "not Completed");
    expectFailed(ns, "not-restorable", "CheckpointNotRestorable", "a tty");
    expectFailed(ns, "no-node", "NodeNotFound", "node n9 not found");
    expectFailed(ns, "taken", "PodAlreadyExists", "rst-bad/taken already exists");
    expectFailed(ns, "other-ns-secret", "StorageSecretInOtherNamespace", "elsewhere/s3");
    expectFailed(ns, "no-secret", "StorageSecretNotFound", "rst-bad/s3 not found");
    for (String n :
        List.of(
            "no-ckpt", "not-done", "not-restorable", "no-node", "other-ns-secret", "no-secret")) {
      assertNull(client.pods().inNamespace(ns).withName(n).get(), n + ": no pod created");
    }
    assertEquals(
        "containerd://d",
        client
            .pods()
            .inNamespace(ns)
            .withName("taken")
            .get()
            .getStatus()
            .getContainerStatuses()
            .get(0)
            .getContainerID(),
        "a stranger's pod of the wanted name is left alone");
  }

  void expectFailed(String ns, String name, String reason, String fragment) {
    Restore r = awaitRestore(ns, name, RestorePhase.Failed);
    assertEquals(reason, reason(r), name);
    assertEquals("False", RestoreStatusAggregator.condition(r.getStatus(), "Accepted").getStatus());
    assertTrue(r.getStatus().message.contains(fragment), name + ": " + r.getStatus().message);
  }

  @Test
  void restoreFromAUriUsesTheTemplateAndTheSecretOfItsNamespace() {
    String ns = "rst-uri";
    client
        .resource(
            new SecretBuilder()
                .withNewMetadata()
                .withNamespace(ns)
                .withName("s3")
                .endMetadata()
                .build())
        .create();
    var tpl = PodTemplates.sanitize(Fixtures.runningPod(ns, "web", "n1", "app", "containerd://e"));
    restore(
        ns,
        "r1",
        s -> {
          s.setUri("s3://bucket/ns/c/uid/");
          s.setTemplate(tpl);
          s.setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3", null));
        });
    awaitRestore(ns, "r1", RestorePhase.Restoring);
    Pod pod = client.pods().inNamespace(ns).withName("r1").get();
    Restore r = get(Restore.class, ns, "r1");
    // its own credentials Secret: the node agent stages it, the wrapper restores what it staged
    assertEquals(
        "staged:" + r.getMetadata().getUid() + "/app",
        pod.getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));
    assertEquals("s3://bucket/ns/c/uid/", r.getStatus().location);
    assertTrue(r.getStatus().message.contains("staged on the node"), r.getStatus().message);
    assertNull(pod.getSpec().getAffinity(), "no target node: the scheduler's choice");
  }

  @Test
  void deletingARestoreBeforeItsPodIsReadyDeletesThePod() {
    String ns = "rst-del";
    completedCheckpoint(
        ns, "c1", Fixtures.runningPod(ns, "web", "n1", "app", "containerd://f"), t -> {});
    restore(ns, "r1", s -> s.setCheckpointName("c1"));
    awaitRestore(ns, "r1", RestorePhase.Restoring);
    assertNotNull(client.pods().inNamespace(ns).withName("r1").get());
    client.resources(Restore.class).inNamespace(ns).withName("r1").delete();
    await().atMost(Duration.ofSeconds(15)).until(() -> get(Restore.class, ns, "r1") == null);
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> client.pods().inNamespace(ns).withName("r1").get() == null);
    assertNotNull(client.pods().inNamespace(ns).withName("web").get(), "the source is untouched");
  }

  // ---------------------------------------------------------------- Migration

  /** Without pre-copy: today's flow (one checkpoint after the cut, then the restore). */
  Migration migration(String ns, String name, String pod, String target) {
    return migration(ns, name, pod, target, false);
  }

  Migration migration(String ns, String name, String pod, String target, boolean preCopy) {
    Migration m = new Migration();
    m.setMetadata(new ObjectMetaBuilder().withNamespace(ns).withName(name).build());
    MigrationSpec s = new MigrationSpec();
    s.setPodName(pod);
    s.setTargetNode(target);
    s.setTimeoutSeconds(60);
    s.setPreCopy(preCopy);
    m.setSpec(s);
    return client.resource(m).create();
  }

  Migration awaitMigration(String ns, String name, MigrationPhase phase) {
    await()
        .atMost(Duration.ofSeconds(20))
        .until(
            () -> {
              Migration m = get(Migration.class, ns, name);
              return m != null && m.getStatus() != null && m.getStatus().phase == phase;
            });
    return get(Migration.class, ns, name);
  }

  static String cond(Migration m, String type) {
    var c = MigrationStatusAggregator.condition(m.getStatus(), type);
    return c.getStatus() + "/" + c.getReason();
  }

  /** The node agent's part, simulated: the Checkpoint the migration made ends as given. */
  Checkpoint agentCompletes(String ns, String name, Pod source, Transition t) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Checkpoint c = get(Checkpoint.class, ns, name);
              return c != null
                  && c.getMetadata().getLabels() != null
                  && c.getMetadata().getLabels().containsKey(Labels.NODE);
            });
    Checkpoint c = get(Checkpoint.class, ns, name);
    assertTrue(c.getSpec().effectiveLeaveRunning(), "the source keeps running through the dump");
    assertEquals("Migration", c.getMetadata().getOwnerReferences().get(0).getKind());
    if (t.phase() == Phase.Completed) {
      t.location("s3://stasis-test/checkpoints/" + ns + "/" + name + "/" + c.getMetadata().getUid())
          .containers(List.of(new CheckpointStatus.ContainerRef("app", "containerd://src")))
          .podTemplate(PodTemplates.sanitize(source))
          .frozenAt(Instant.now());
    }
    writeCheckpointStatus(ns, name, t);
    return get(Checkpoint.class, ns, name);
  }

  Pod source(String ns) {
    Pod p = Fixtures.runningPod(ns, "web", "n1", "app", "containerd://src");
    p.getMetadata().setLabels(Map.of("app", "web"));
    return client.resource(p).create();
  }

  @Test
  void migrationThroughEveryPhaseDeletesTheSourceOnlyOnceTheCopyIsReady() {
    String ns = "mig-ok";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2");
    Migration m = awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    assertEquals("n1", m.getStatus().sourceNode);
    assertEquals("True/SourceLeftRunning", cond(m, "SourceRunning"));
    agentCompletes(ns, "m1", src, Transition.to(Phase.Completed, Reason.Completed, "stored"));
    m = awaitMigration(ns, "m1", MigrationPhase.Restoring);
    assertNotNull(m.getStatus().frozenAt);
    Restore r = get(Restore.class, ns, "m1");
    assertEquals("n2", r.getSpec().getNodeName());
    assertEquals("m1", r.getSpec().getCheckpointName());
    awaitRestore(ns, "m1", RestorePhase.Restoring);
    Pod copy = client.pods().inNamespace(ns).withName("m1").get();
    assertEquals(
        Map.of("app", "web"), copy.getMetadata().getLabels(), "the copy serves as the source did");
    assertNotNull(
        client.pods().inNamespace(ns).withName("web").get(), "source kept until the copy is Ready");

    kubelet.runReady(ns, "m1", "n2");
    m = awaitMigration(ns, "m1", MigrationPhase.Completed);
    assertEquals("True/Migrated", cond(m, "Ready"));
    assertEquals("False/SourceDeleted", cond(m, "SourceRunning"));
    assertNull(client.pods().inNamespace(ns).withName("web").get(), "source deleted");
    assertNotNull(client.pods().inNamespace(ns).withName("m1").get(), "copy kept");
    assertNotNull(m.getStatus().downtimeMillis);
    assertTrue(m.getStatus().downtimeMillis >= 0 && m.getStatus().downtimeMillis < 20_000);
    assertTrue(m.getStatus().message.contains("downtime"), m.getStatus().message);
    for (String p : List.of("Checkpointing", "Restoring", "DeletingSource", "Completed")) {
      assertTrue(
          client.v1().events().inNamespace(ns).list().getItems().stream()
              .anyMatch(e -> e.getMessage().startsWith(p + ":")),
          "an Event for " + p);
    }
  }

  @Test
  void copyThatFailsToStartIsDeletedAndTheSourceKeepsRunning() {
    String ns = "mig-rollback";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2");
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    agentCompletes(ns, "m1", src, Transition.to(Phase.Completed, Reason.Completed, "stored"));
    awaitRestore(ns, "m1", RestorePhase.Restoring);
    kubelet.containerWaiting(ns, "m1", "n2", "CrashLoopBackOff", "back-off restarting");
    Migration m = awaitMigration(ns, "m1", MigrationPhase.Failed);
    assertEquals("True/RestoreFailed", cond(m, "Failed"));
    assertEquals("True/SourceLeftRunning", cond(m, "SourceRunning"));
    assertTrue(m.getStatus().message.contains("CrashLoopBackOff"), m.getStatus().message);
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> client.pods().inNamespace(ns).withName("m1").get() == null);
    Pod still = client.pods().inNamespace(ns).withName("web").get();
    assertEquals(src.getMetadata().getUid(), still.getMetadata().getUid());
    assertEquals("Running", still.getStatus().getPhase());
  }

  @Test
  void failedCheckpointFailsTheMigrationWithoutARestore() {
    String ns = "mig-ckpt-fail";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2");
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    agentCompletes(ns, "m1", src, Transition.failed(Reason.DumpFailed, "fd 3: a tty"));
    Migration m = awaitMigration(ns, "m1", MigrationPhase.Failed);
    assertEquals("True/CheckpointFailed", cond(m, "Failed"));
    assertTrue(m.getStatus().message.contains("DumpFailed"), m.getStatus().message);
    assertEquals("True/SourceLeftRunning", cond(m, "SourceRunning"));
    assertNull(get(Restore.class, ns, "m1"));
    assertNotNull(client.pods().inNamespace(ns).withName("web").get());
  }

  @Test
  void badMigrationsFailBeforeAnythingIsCheckpointed() {
    String ns = "mig-bad";
    source(ns);
    migration(ns, "no-pod", "nope", "n2");
    migration(ns, "no-node", "web", "n9");
    migration(ns, "same-node", "web", "n1");
    for (var e :
        Map.of(
                "no-pod", "PodNotFound",
                "no-node", "NodeNotFound",
                "same-node", "TargetIsSourceNode")
            .entrySet()) {
      Migration m = awaitMigration(ns, e.getKey(), MigrationPhase.Failed);
      assertEquals("False/" + e.getValue(), cond(m, "Accepted"), e.getKey());
      assertNull(get(Checkpoint.class, ns, e.getKey()), e.getKey() + ": nothing checkpointed");
    }
  }

  /**
   * A pod with a controller is refused before anything is checkpointed, with the controller named:
   * a ReplicaSet would adopt the copy (it has the source's labels) and delete one of the two, a
   * StatefulSet owns its pod by name. An owner that is not the controller does not count.
   */
  @Test
  void podsWithAControllerAreRefusedBeforeAnythingIsCheckpointed() {
    String ns = "mig-owned";
    Map<String, String> owners =
        Map.of("rs", "ReplicaSet", "sts", "StatefulSet", "other", "ConfigMap");
    for (var e : owners.entrySet()) {
      Pod p = Fixtures.runningPod(ns, "pod-" + e.getKey(), "n1", "app", "containerd://src");
      p.getMetadata().setLabels(Map.of("app", "web"));
      p.getMetadata()
          .setOwnerReferences(
              List.of(
                  new io.fabric8.kubernetes.api.model.OwnerReferenceBuilder()
                      .withApiVersion(e.getValue().equals("ConfigMap") ? "v1" : "apps/v1")
                      .withKind(e.getValue())
                      .withName("web-" + e.getKey())
                      .withUid("uid-" + e.getKey())
                      .withController(!e.getKey().equals("other"))
                      .build()));
      client.resource(p).create();
      migration(ns, "m-" + e.getKey(), "pod-" + e.getKey(), "n2");
    }
    for (String k : List.of("rs", "sts")) {
      Migration m = awaitMigration(ns, "m-" + k, MigrationPhase.Failed);
      assertEquals("False/PodHasController", cond(m, "Accepted"), k);
      assertTrue(
          m.getStatus().message.contains("controlled by " + owners.get(k) + " web-" + k),
          m.getStatus().message);
      assertNull(get(Checkpoint.class, ns, "m-" + k), k + ": nothing checkpointed");
      assertNull(get(Restore.class, ns, "m-" + k), k + ": nothing restored");
      assertNotNull(client.pods().inNamespace(ns).withName("pod-" + k).get(), "source untouched");
    }
    assertTrue(
        get(Migration.class, ns, "m-rs").getStatus().message.contains("adopt the copy"),
        "says why");
    // an owner reference without controller: true is no controller
    awaitMigration(ns, "m-other", MigrationPhase.Checkpointing);
    assertNotNull(get(Checkpoint.class, ns, "m-other"));
  }

  @Test
  void deletingAMigrationMidWayDeletesTheCopyAndLeavesTheSource() {
    String ns = "mig-del";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2");
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    agentCompletes(ns, "m1", src, Transition.to(Phase.Completed, Reason.Completed, "stored"));
    awaitRestore(ns, "m1", RestorePhase.Restoring);
    assertNotNull(client.pods().inNamespace(ns).withName("m1").get());
    client.resources(Migration.class).inNamespace(ns).withName("m1").delete();
    await().atMost(Duration.ofSeconds(15)).until(() -> get(Migration.class, ns, "m1") == null);
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> client.pods().inNamespace(ns).withName("m1").get() == null);
    assertEquals(
        src.getMetadata().getUid(),
        client.pods().inNamespace(ns).withName("web").get().getMetadata().getUid());
  }

  // ------------------------------------------------------- Migration with pre-copy

  /**
   * The source agent's part of a pre-copy, simulated: the Checkpoint the migration made (held) is
   * claimed and reports every parent set stored while the pod runs.
   */
  Checkpoint agentStoresParents(String ns, String name) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Checkpoint c = get(Checkpoint.class, ns, name);
              return c != null
                  && c.getMetadata().getLabels() != null
                  && c.getMetadata().getLabels().containsKey(Labels.NODE);
            });
    Checkpoint c = get(Checkpoint.class, ns, name);
    assertTrue(c.getSpec().effectiveLeaveRunning(), "the source keeps running through the dump");
    assertTrue(c.getSpec().effectiveHoldFinalFreeze(), "the final cut waits for the go");
    writeCheckpointStatus(
        ns,
        name,
        Transition.to(Phase.Running, Reason.ParentStored, "parent sets stored")
            .parentStored(Instant.now().toString(), 64 << 20));
    return get(Checkpoint.class, ns, name);
  }

  /** The target agent's part, simulated: ParentStaged (or its failure) on the Restore. */
  void targetAgentReports(String ns, String name, Reason reason, String message) {
    await()
        .atMost(Duration.ofSeconds(15))
        .ignoreException(KubernetesClientException.class)
        .until(
            () -> {
              Restore r = get(Restore.class, ns, name);
              r.setStatus(
                  RestoreStatusAggregator.parentStaged(
                      r.getStatus(),
                      r.getMetadata().getGeneration(),
                      reason,
                      message,
                      Instant.now()));
              client.resource(r).updateStatus();
              return true;
            });
  }

  /** Waits for the held Restore: Pending, recorded on the target node for its agent, no pod. */
  Restore awaitPreStagingRestore(String ns, String name) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Restore r = get(Restore.class, ns, name);
              return r != null
                  && r.getStatus() != null
                  && "n2".equals(r.getStatus().nodeName)
                  && r.getStatus().message != null;
            });
    Restore r = get(Restore.class, ns, name);
    assertEquals(RestorePhase.Pending, r.getStatus().phase, r.getStatus().message);
    assertTrue(r.getStatus().message.contains("holds its final cut"), r.getStatus().message);
    return r;
  }

  @Test
  void preCopyMigrationStagesTheParentsBeforeTheFinalCutThroughEveryPhase() {
    String ns = "mig-pre";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2", true);
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    assertNull(get(Restore.class, ns, "m1"), "no Restore before the parent sets are stored");
    agentStoresParents(ns, "m1");

    Migration m = awaitMigration(ns, "m1", MigrationPhase.PreStaging);
    assertEquals("True/SourceLeftRunning", cond(m, "SourceRunning"));
    Restore r = get(Restore.class, ns, "m1");
    assertEquals("n2", r.getSpec().getNodeName());
    r = awaitPreStagingRestore(ns, "m1");
    assertNull(client.pods().inNamespace(ns).withName("m1").get(), "no pod before the final cut");
    assertTrue(!Labels.finalFreezeGo(get(Checkpoint.class, ns, "m1")), "no go before ParentStaged");

    targetAgentReports(ns, "m1", Reason.ParentStaged, "app staged on n2");
    m = awaitMigration(ns, "m1", MigrationPhase.Restoring);
    assertNotNull(m.getStatus().parentStagedAt);
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> Labels.finalFreezeGo(get(Checkpoint.class, ns, "m1")));
    assertNull(m.getStatus().frozenAt, "the final cut is not taken yet");
    assertNull(client.pods().inNamespace(ns).withName("m1").get(), "still no pod: no final cut");
    assertEquals(RestorePhase.Pending, get(Restore.class, ns, "m1").getStatus().phase);

    // the source's final cut: the delta stored, Completed
    agentCompletes(ns, "m1", src, Transition.to(Phase.Completed, Reason.Completed, "stored"));
    r = awaitRestore(ns, "m1", RestorePhase.Restoring);
    Pod copy = client.pods().inNamespace(ns).withName("m1").get();
    assertEquals(
        "staged:" + r.getMetadata().getUid() + "/app",
        copy.getMetadata().getAnnotations().get("restore-from.stasis.dev/app"),
        "the target agent, which holds the parent, stages the container");
    await()
        .atMost(Duration.ofSeconds(15))
        .until(() -> get(Migration.class, ns, "m1").getStatus().frozenAt != null);

    kubelet.runReady(ns, "m1", "n2");
    m = awaitMigration(ns, "m1", MigrationPhase.Completed);
    assertEquals("True/Migrated", cond(m, "Ready"));
    assertNull(client.pods().inNamespace(ns).withName("web").get(), "source deleted");
    assertEquals(
        Instant.parse(m.getStatus().copyReadyAt).toEpochMilli()
            - Instant.parse(m.getStatus().frozenAt).toEpochMilli(),
        m.getStatus().downtimeMillis,
        "downtime counts from the final cut");
    for (String p :
        List.of("Checkpointing", "PreStaging", "Restoring", "DeletingSource", "Completed")) {
      assertTrue(
          client.v1().events().inNamespace(ns).list().getItems().stream()
              .anyMatch(e -> e.getMessage().startsWith(p + ":")),
          "an Event for " + p);
    }
  }

  @Test
  void aFailedPreStageReleasesTheHeldCheckpointAndTheSourceRunsOn() {
    String ns = "mig-pre-fail";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2", true);
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    agentStoresParents(ns, "m1");
    awaitMigration(ns, "m1", MigrationPhase.PreStaging);
    awaitPreStagingRestore(ns, "m1");
    targetAgentReports(
        ns, "m1", Reason.StageFailed, "object parent/pages-1.img failed verification");
    Migration m = awaitMigration(ns, "m1", MigrationPhase.Failed);
    assertEquals("True/StageFailed", cond(m, "Failed"));
    assertEquals("True/SourceLeftRunning", cond(m, "SourceRunning"));
    assertTrue(m.getStatus().message.contains("failed verification"), m.getStatus().message);
    await().atMost(Duration.ofSeconds(5)).until(() -> get(Checkpoint.class, ns, "m1") == null);
    // the held Checkpoint gone, its Restore ends too (and the target agent removes its stage)
    awaitRestore(ns, "m1", RestorePhase.Failed);
    assertNull(client.pods().inNamespace(ns).withName("m1").get(), "no copy");
    assertEquals(
        src.getMetadata().getUid(),
        client.pods().inNamespace(ns).withName("web").get().getMetadata().getUid());
  }

  @Test
  void deletingAMigrationDuringPreStagingReleasesTheHeldCheckpoint() {
    String ns = "mig-pre-del";
    Pod src = source(ns);
    migration(ns, "m1", "web", "n2", true);
    awaitMigration(ns, "m1", MigrationPhase.Checkpointing);
    agentStoresParents(ns, "m1");
    awaitMigration(ns, "m1", MigrationPhase.PreStaging);
    awaitPreStagingRestore(ns, "m1");
    client.resources(Migration.class).inNamespace(ns).withName("m1").delete();
    await().atMost(Duration.ofSeconds(15)).until(() -> get(Migration.class, ns, "m1") == null);
    await().atMost(Duration.ofSeconds(5)).until(() -> get(Checkpoint.class, ns, "m1") == null);
    assertNull(client.pods().inNamespace(ns).withName("m1").get(), "no copy");
    assertEquals(
        src.getMetadata().getUid(),
        client.pods().inNamespace(ns).withName("web").get().getMetadata().getUid());
  }
}
