package dev.stasis.operator;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.StatusAggregator;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.kubernetes.client.WithKubernetesTestServer;
import jakarta.inject.Inject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The real operator against the fabric8 mock API server in CRUD mode, without any node agent: every
 * bad request ends Failed with its precise reason and is never dispatched.
 */
@QuarkusTest
@WithKubernetesTestServer(crud = true, setup = CrdSetup.class)
class OperatorMockServerTest {
  @Inject KubernetesClient client;

  Checkpoint create(
      String ns, String name, String pod, java.util.function.Consumer<CheckpointSpec> edit) {
    Checkpoint c = Fixtures.checkpoint(ns, name, pod);
    edit.accept(c.getSpec());
    return client.resource(c).create();
  }

  Checkpoint awaitPhase(String ns, String name, Phase phase) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Checkpoint c =
                  client.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
              return c != null && c.getStatus() != null && c.getStatus().phase == phase;
            });
    return client.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
  }

  static String reason(Checkpoint c) {
    return StatusAggregator.condition(c.getStatus(), StatusAggregator.READY).getReason();
  }

  void assertFailedUndispatched(Checkpoint c, String reason, String fragment) {
    assertEquals(reason, reason(c));
    assertEquals(reason, StatusAggregator.condition(c.getStatus(), "Failed").getReason());
    assertTrue(c.getStatus().message.contains(fragment), c.getStatus().message);
    assertTrue(
        c.getMetadata().getLabels() == null
            || !c.getMetadata().getLabels().containsKey(Labels.NODE),
        "a rejected checkpoint must never be dispatched to a node");
    assertEquals(c.getMetadata().getGeneration(), c.getStatus().observedGeneration);
  }

  @Test
  void badRequestsEndFailedWithReasons() throws Exception {
    String ns = "bad";
    client.resource(Fixtures.runningPod(ns, "web", "node-1", "app", "containerd://aa")).create();
    var notRunning = Fixtures.runningPod(ns, "starting", "node-1", "app", "containerd://bb");
    notRunning.getStatus().setPhase("Pending");
    client.resource(notRunning).create();
    client
        .resource(
            new SecretBuilder()
                .withNewMetadata()
                .withNamespace("other")
                .withName("s3")
                .endMetadata()
                .build())
        .create();

    create(ns, "missing-pod", "nope", s -> {});
    create(ns, "not-running", "starting", s -> {});
    create(ns, "bad-container", "web", s -> s.setContainers(List.of("sidecar")));
    create(ns, "no-secret", "web", s -> s.setStorage(storage("s3", null)));
    create(ns, "other-ns-secret", "web", s -> s.setStorage(storage("s3", "other")));

    assertFailedUndispatched(
        awaitPhase(ns, "missing-pod", Phase.Failed), "PodNotFound", "pod bad/nope not found");
    assertFailedUndispatched(
        awaitPhase(ns, "not-running", Phase.Failed), "PodNotRunning", "is Pending, not Running");
    assertFailedUndispatched(
        awaitPhase(ns, "bad-container", Phase.Failed), "ContainerNotFound", "'sidecar'");
    assertFailedUndispatched(
        awaitPhase(ns, "no-secret", Phase.Failed), "StorageSecretNotFound", "bad/s3 not found");
    assertFailedUndispatched(
        awaitPhase(ns, "other-ns-secret", Phase.Failed),
        "StorageSecretInOtherNamespace",
        "other/s3");
    assertTrue(
        client.v1().events().inNamespace(ns).list().getItems().stream()
            .anyMatch(e -> "PodNotFound".equals(e.getReason()) && "Warning".equals(e.getType())),
        "each phase change is recorded as an Event");
    String metrics = http("/q/metrics");
    assertTrue(
        metrics.contains("stasis_checkpoint_failures_total{reason=\"PodNotFound\"} 1.0"),
        "failures by reason reach Prometheus");
    assertTrue(metrics.contains("stasis_checkpoint_failures_total{reason=\"ContainerNotFound\"}"));
    assertTrue(http("/q/health/live").contains("\"status\": \"UP\""));
  }

  @Test
  void dispatchQueuesSecondCheckpointAndTimesOutWithoutAgent() {
    String ns = "queue";
    var pod =
        client
            .resource(Fixtures.runningPod(ns, "web", "node-9", "app", "containerd://cc"))
            .create();
    create(ns, "first", "web", s -> s.setTimeoutSeconds(3));
    Checkpoint first = awaitDispatched(ns, "first");
    assertEquals("node-9", first.getMetadata().getLabels().get(Labels.NODE));
    assertEquals("node-9", first.getStatus().nodeName);
    assertEquals("containerd://cc", first.getStatus().containers.get(0).containerID);
    assertEquals(pod.getMetadata().getUid(), first.getStatus().podUID);

    create(ns, "second", "web", s -> s.setTimeoutSeconds(3));
    Checkpoint second = awaitPhase(ns, "second", Phase.Pending);
    await()
        .atMost(Duration.ofSeconds(5))
        .until(() -> "WaitingForPreviousCheckpoint".equals(reason(get(ns, "second"))));
    assertTrue(get(ns, "second").getStatus().message.contains("first"));
    assertTrue(
        second.getMetadata().getLabels() == null
            || !second.getMetadata().getLabels().containsKey(Labels.NODE),
        "the second one is not dispatched while the first runs");

    // No agent runs on node-9: the first fails after its timeout, then the second is released.
    Checkpoint failed = awaitPhase(ns, "first", Phase.Failed);
    assertEquals("AgentUnavailable", reason(failed));
    assertTrue(failed.getStatus().message.contains("node node-9"), failed.getStatus().message);
    awaitDispatched(ns, "second");
    assertEquals("AgentUnavailable", reason(awaitPhase(ns, "second", Phase.Failed)));
  }

  @Test
  void specEditAfterAcceptanceIsRefusedByTheOperatorGuard() {
    String ns = "edit";
    client.resource(Fixtures.runningPod(ns, "web", "node-2", "app", "containerd://dd")).create();
    create(ns, "c", "web", s -> s.setTimeoutSeconds(60));
    awaitDispatched(ns, "c");
    // The mock does not evaluate the CRD's CEL rule (checked in CrdYamlUpToDateTest), so the edit
    // goes through here and the operator's own guard must catch it.
    client
        .resources(Checkpoint.class)
        .inNamespace(ns)
        .withName("c")
        .edit(
            c -> {
              c.getSpec().setTimeoutSeconds(61);
              return c;
            });
    Checkpoint c = awaitPhase(ns, "c", Phase.Failed);
    assertEquals("SpecChanged", reason(c));
    assertTrue(c.getStatus().message.contains("generation 1 -> 2"), c.getStatus().message);
  }

  @Test
  void deletionWithoutAgentFinishesAfterGrace() {
    String ns = "del";
    client.resource(Fixtures.runningPod(ns, "web", "node-3", "app", "containerd://ee")).create();
    create(ns, "c", "web", s -> s.setTimeoutSeconds(60));
    awaitDispatched(ns, "c");
    // Pretend an agent claimed it and then vanished with its node.
    client
        .resources(Checkpoint.class)
        .inNamespace(ns)
        .withName("c")
        .edit(
            c -> {
              c.getMetadata().getAnnotations().put(Labels.CLAIM, "node-3/gone");
              List<String> f = new ArrayList<>(c.getMetadata().getFinalizers());
              f.add(Labels.AGENT_FINALIZER);
              c.getMetadata().setFinalizers(f);
              return c;
            });
    client.resources(Checkpoint.class).inNamespace(ns).withName("c").delete();
    assertTrue(get(ns, "c").getMetadata().getDeletionTimestamp() != null);
    await().atMost(Duration.ofSeconds(15)).until(() -> get(ns, "c") == null);
    assertTrue(
        client.v1().events().inNamespace(ns).list().getItems().stream()
            .anyMatch(e -> e.getMessage().contains("did not clean up")));
  }

  /** The port Quarkus bound for this test run (test-port 0: any free one). */
  static int port() {
    return org.eclipse.microprofile.config.ConfigProvider.getConfig()
        .getValue("quarkus.http.test-port", Integer.class);
  }

  static String http(String path) throws Exception {
    var res =
        java.net.http.HttpClient.newHttpClient()
            .send(
                java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://localhost:" + port() + path))
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    assertEquals(200, res.statusCode(), path + ": " + res.body());
    return res.body();
  }

  Checkpoint get(String ns, String name) {
    return client.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
  }

  Checkpoint awaitDispatched(String ns, String name) {
    await()
        .atMost(Duration.ofSeconds(15))
        .until(
            () -> {
              Checkpoint c = get(ns, name);
              return c.getMetadata().getLabels() != null
                  && c.getMetadata().getLabels().containsKey(Labels.NODE)
                  && c.getStatus() != null
                  && "Dispatched".equals(reason(c));
            });
    return get(ns, name);
  }

  static CheckpointSpec.StorageSpec storage(String secret, String secretNs) {
    var s = new CheckpointSpec.StorageSpec();
    s.setUri("s3://bucket/prefix");
    s.setCredentialsSecretRef(new CheckpointSpec.SecretRef(secret, secretNs));
    return s;
  }
}
