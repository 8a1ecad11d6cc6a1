package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Reconciler logic without any server. */
class CheckpointDeciderTest {
  static final Instant NOW = Instant.parse("2026-11-28T04:10:00Z");
  final CheckpointDecider decider =
      new CheckpointDecider(Optional.of("s3://b/p"), Duration.ofSeconds(2), Duration.ofSeconds(30));

  Pod pod = Fixtures.runningPod("ns", "web", "node-1", "app", "containerd://abc");
  Checkpoint cr = Fixtures.storedCheckpoint("ns", "c1", "web", "2026-11-28T04:00:00Z");

  CheckpointDecider.Decision decide(Pod p, List<Checkpoint> others) {
    return decider.decide(
        new CheckpointDecider.Observed(cr, p, n -> n.equals("creds"), others, NOW));
  }

  void assertFailed(CheckpointDecider.Decision d, Reason r, String fragment) {
    assertEquals(Phase.Failed, d.transition().phase());
    assertEquals(r, d.transition().reason());
    assertTrue(d.transition().message().contains(fragment), d.transition().message());
    assertNull(d.dispatchTo(), "nothing may be dispatched for a bad request");
  }

  @Test
  void dispatchesAValidCheckpointToThePodsNode() {
    var d = decide(pod, List.of(cr));
    assertEquals(Phase.Pending, d.transition().phase());
    assertEquals(Reason.Dispatched, d.transition().reason());
    assertEquals("node-1", d.dispatchTo());
  }

  @Test
  void badRequestsFailWithPreciseReasons() {
    assertFailed(decide(null, List.of()), Reason.PodNotFound, "pod ns/web not found");
    pod.getStatus().setPhase("Pending");
    assertFailed(decide(pod, List.of()), Reason.PodNotRunning, "is Pending, not Running");
    pod.getStatus().setPhase("Running");
    cr.getSpec().setContainers(List.of("sidecar"));
    assertFailed(decide(pod, List.of()), Reason.ContainerNotFound, "no container 'sidecar'");
    cr.getSpec().setContainers(List.of());
    var storage = new CheckpointSpec.StorageSpec();
    storage.setUri("s3://x/y");
    storage.setCredentialsSecretRef(new CheckpointSpec.SecretRef("missing", null));
    cr.getSpec().setStorage(storage);
    assertFailed(decide(pod, List.of()), Reason.StorageSecretNotFound, "ns/missing");
    storage.setCredentialsSecretRef(new CheckpointSpec.SecretRef("creds", "other"));
    assertFailed(decide(pod, List.of()), Reason.StorageSecretInOtherNamespace, "other/creds");
    storage.setCredentialsSecretRef(new CheckpointSpec.SecretRef("creds", "ns"));
    assertEquals(Reason.Dispatched, decide(pod, List.of()).transition().reason());
  }

  @Test
  void noStoreAtAllIsRejected() {
    var d =
        new CheckpointDecider(Optional.empty(), Duration.ofSeconds(2), Duration.ofSeconds(30))
            .decide(new CheckpointDecider.Observed(cr, pod, n -> true, List.of(), NOW));
    assertFailed(d, Reason.StorageNotConfigured, "spec.storage");
  }

  @Test
  void secondCheckpointOfThePodWaits() {
    Checkpoint first = Fixtures.storedCheckpoint("ns", "c0", "web", "2026-11-28T03:59:00Z");
    var d = decide(pod, List.of(first, cr));
    assertEquals(Phase.Pending, d.transition().phase());
    assertEquals(Reason.WaitingForPreviousCheckpoint, d.transition().reason());
    assertTrue(d.transition().message().contains("c0"));
    assertNull(d.dispatchTo());
    first.setStatus(
        dev.stasis.crds.StatusAggregator.next(
            null, 1, dev.stasis.crds.Transition.failed(Reason.PodNotFound, "x"), NOW));
    assertEquals("node-1", decide(pod, List.of(first, cr)).dispatchTo(), "released when done");
  }

  @Test
  void unclaimedDispatchTimesOutAsAgentUnavailable() {
    cr.getSpec().setTimeoutSeconds(60);
    cr.getMetadata().setLabels(Map.of(Labels.NODE, "node-1"));
    cr.getMetadata()
        .setAnnotations(
            Map.of(Labels.ACCEPTED_GENERATION, "1", Labels.DISPATCHED_AT, "2026-11-28T04:09:30Z"));
    var waiting = decide(pod, List.of());
    assertNull(waiting.transition());
    assertEquals(Duration.ofSeconds(2), waiting.recheckAfter());
    cr.getMetadata()
        .setAnnotations(
            Map.of(Labels.ACCEPTED_GENERATION, "1", Labels.DISPATCHED_AT, "2026-11-28T04:08:59Z"));
    assertFailed(decide(pod, List.of()), Reason.AgentUnavailable, "node node-1");
  }

  @Test
  void specEditAfterAcceptanceFails() {
    cr.getMetadata().setGeneration(2L);
    cr.getMetadata().setLabels(Map.of(Labels.NODE, "node-1"));
    cr.getMetadata()
        .setAnnotations(
            Map.of(Labels.ACCEPTED_GENERATION, "1", Labels.DISPATCHED_AT, "2026-11-28T04:09:59Z"));
    assertFailed(decide(pod, List.of()), Reason.SpecChanged, "generation 1 -> 2");
  }

  @Test
  void claimedCheckpointBelongsToTheAgentUntilItOverruns() {
    cr.getSpec().setTimeoutSeconds(300);
    cr.getMetadata().setLabels(Map.of(Labels.NODE, "node-1"));
    cr.getMetadata()
        .setAnnotations(
            Map.of(
                Labels.CLAIM, "node-1/a",
                Labels.ACCEPTED_GENERATION, "1",
                Labels.DISPATCHED_AT, "2026-11-28T04:05:00Z"));
    assertNull(decide(pod, List.of()).transition(), "within 300s + 30s grace");
    cr.getMetadata()
        .setAnnotations(
            Map.of(
                Labels.CLAIM, "node-1/a",
                Labels.ACCEPTED_GENERATION, "1",
                Labels.DISPATCHED_AT, "2026-11-28T04:04:29Z"));
    assertFailed(decide(pod, List.of()), Reason.TimedOut, "node-1/a did not finish");
  }

  /** Issue 14: spec.storage.uri is restricted before anything is dispatched to an agent. */
  @Test
  void storageOutsideWhatTheClusterAllowsIsRefusedBeforeDispatch() {
    var storage = new CheckpointSpec.StorageSpec();
    storage.setUri("file:///proc/self/root/var/lib");
    storage.setCredentialsSecretRef(new CheckpointSpec.SecretRef("creds", null));
    cr.getSpec().setStorage(storage);
    assertFailed(decide(pod, List.of()), Reason.StorageNotAllowed, "not an s3://bucket/prefix");
    storage.setUri("s3://someone-elses/bucket");
    storage.setCredentialsSecretRef(null);
    assertFailed(
        decide(pod, List.of()), Reason.StorageNotAllowed, "default credentials are used only");
    storage.setUri("s3://b/p/ns");
    assertEquals(Reason.Dispatched, decide(pod, List.of()).transition().reason(), "own prefix");

    CheckpointDecider listed =
        new CheckpointDecider(
            Optional.of("s3://b/p"),
            Duration.ofSeconds(2),
            Duration.ofSeconds(30),
            List.of("s3://approved"));
    storage.setUri("s3://elsewhere/x");
    storage.setCredentialsSecretRef(new CheckpointSpec.SecretRef("creds", null));
    var d =
        listed.decide(
            new CheckpointDecider.Observed(cr, pod, n -> n.equals("creds"), List.of(), NOW));
    assertFailed(d, Reason.StorageNotAllowed, "not under a store the cluster allows");
  }
}
