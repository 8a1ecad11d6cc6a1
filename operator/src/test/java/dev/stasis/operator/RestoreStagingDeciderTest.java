package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Phase;
import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Which restored pods name staged images, and how the Restore follows staging. No server. */
class RestoreStagingDeciderTest {
  static final Instant NOW = Instant.parse("2026-12-04T05:00:00Z");
  static final String UID = "7d1e2f30-aaaa-4bbb-8ccc-0123456789ab";
  final RestoreDecider decider =
      new RestoreDecider(Duration.ofSeconds(2), "stasis", Optional.of("s3://team"), List.of());

  Checkpoint checkpoint(CheckpointSpec.StorageSpec storage, CheckpointSpec.EncryptionSpec enc) {
    Pod of = Fixtures.runningPod("ns", "web", "n1", "app", "containerd://x");
    Checkpoint c = Fixtures.checkpoint("ns", "c1", "web");
    c.getSpec().setStorage(storage);
    c.getSpec().setEncryption(enc);
    c.setStatus(
        StatusAggregator.next(
            null,
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored")
                .location("s3://team/ns/c1/uid")
                .containers(List.of(new CheckpointStatus.ContainerRef("app", "containerd://x")))
                .podTemplate(PodTemplates.sanitize(of)),
            NOW));
    return c;
  }

  Restore restore() {
    Restore r = new Restore();
    r.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace("ns")
            .withName("back")
            .withUid(UID)
            .withGeneration(1L)
            .build());
    RestoreSpec s = new RestoreSpec();
    s.setCheckpointName("c1");
    r.setSpec(s);
    return r;
  }

  RestoreDecider.Decision decide(Restore r, Checkpoint c, Pod pod) {
    return decider.decide(
        new RestoreDecider.Observed(r, c, s -> !s.equals("missing"), n -> true, pod, NOW));
  }

  static CheckpointSpec.SecretRef ref(String n) {
    return new CheckpointSpec.SecretRef(n, null);
  }

  @Test
  void aCheckpointOnTheDefaultStoreNamesItsLocationForTheWrapper() {
    RestoreDecider.Decision d = decide(restore(), checkpoint(null, null), null);
    assertEquals(
        "s3://team/ns/c1/uid/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));
    assertTrue(!d.step().message().contains("staged"), d.step().message());
  }

  @Test
  void aCheckpointWithItsOwnSecretsNamesStagedImages() {
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://team");
    st.setCredentialsSecretRef(ref("team-creds"));
    CheckpointSpec.EncryptionSpec enc = new CheckpointSpec.EncryptionSpec();
    enc.setKeySecretRef(ref("team-key"));
    RestoreDecider.Decision d = decide(restore(), checkpoint(st, enc), null);
    assertEquals(
        "staged:" + UID + "/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));
    assertEquals(UID, d.create().getMetadata().getAnnotations().get("stasis.dev/restore-uid"));
    assertTrue(
        d.step()
            .message()
            .contains(
                "staged on the node by the node agent: it needs the store's credentials Secret"
                    + " team-creds and the encryption key Secret team-key"),
        d.step().message());
  }

  @Test
  void aRestoreByUriWithAKeyIsStagedAndItsKeySecretIsChecked() {
    Restore r = restore();
    r.getSpec().setCheckpointName(null);
    r.getSpec().setUri("s3://team/ns/c1/uid");
    r.getSpec()
        .setTemplate(PodTemplates.sanitize(Fixtures.runningPod("ns", "w", "n1", "app", "x")));
    CheckpointSpec.EncryptionSpec enc = new CheckpointSpec.EncryptionSpec();
    enc.setKeySecretRef(ref("k"));
    r.getSpec().setEncryption(enc);
    RestoreDecider.Decision d = decide(r, null, null);
    assertEquals(
        "staged:" + UID + "/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));

    enc.setKeySecretRef(ref("missing"));
    d = decide(r, null, null);
    assertEquals(Reason.EncryptionSecretNotFound, d.step().reason());
    assertNull(d.create());
    enc.setKeySecretRef(new CheckpointSpec.SecretRef("k", "other"));
    d = decide(r, null, null);
    assertEquals(Reason.EncryptionSecretInOtherNamespace, d.step().reason());
    assertTrue(d.step().message().contains("other/k"), d.step().message());
  }

  /**
   * Issue 14: without a Secret the runtime wrapper fetches a Restore's {@code spec.uri} with the
   * node's default credentials, so the uri obeys the Checkpoints' store rules: the default store's
   * prefix of the Restore's own namespace only, s3:// only, inside the admin's allow-list.
   */
  @Test
  void aRestoreByUriGetsTheDefaultCredentialsOnlyForItsNamespacesPrefix() {
    Restore r = restore();
    r.getSpec().setCheckpointName(null);
    r.getSpec()
        .setTemplate(PodTemplates.sanitize(Fixtures.runningPod("ns", "w", "n1", "app", "x")));
    r.getSpec().setUri("s3://team/ns/c1/uid");
    RestoreDecider.Decision d = decide(r, null, null);
    assertEquals(
        "s3://team/ns/c1/uid/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"),
        "its own namespace's prefix of the default store: the wrapper fetches it");
    for (String other :
        List.of(
            "s3://team/other-ns/c1/uid",
            "s3://team/nsx/c1/uid",
            "s3://team",
            "s3://elsewhere/ns/c1/uid",
            "file:///proc/self/root/var/lib/x")) {
      r.getSpec().setUri(other);
      d = decide(r, null, null);
      assertEquals(Reason.StorageNotAllowed, d.step().reason(), other);
      assertEquals(RestorePhase.Failed, d.step().phase(), other);
      assertNull(d.create(), "no pod for " + other);
      assertTrue(d.step().message().contains("spec.uri '" + other + "'"), d.step().message());
    }
    // its own credentials: any bucket, fetched by the node agent with that Secret
    r.getSpec().setUri("s3://elsewhere/ns/c1/uid");
    r.getSpec().setCredentialsSecretRef(ref("creds"));
    d = decide(r, null, null);
    assertEquals(
        "staged:" + UID + "/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));
    // but never outside the admin's allow-list, Secret or not
    RestoreDecider narrowed =
        new RestoreDecider(
            Duration.ofSeconds(2), "stasis", Optional.of("s3://team"), List.of("s3://team"));
    d = narrowed.decide(new RestoreDecider.Observed(r, null, s -> true, n -> true, null, NOW));
    assertEquals(Reason.StorageNotAllowed, d.step().reason());
    assertTrue(d.step().message().contains("not under a store the cluster allows"));
    // and file:// not even with a Secret
    r.getSpec().setUri("file:///var/lib/x");
    d = decide(r, null, null);
    assertEquals(Reason.StorageNotAllowed, d.step().reason());
  }

  /** A restore the operator created and is tracking, with its pod waiting in {@code reason}. */
  Pod waiting(Restore r, String reason, String message) {
    Pod p = Fixtures.runningPod("ns", "back", "n1", "app", "containerd://y");
    p.getMetadata().setAnnotations(java.util.Map.of("stasis.dev/restore-uid", UID));
    p.setStatus(
        new PodStatusBuilder()
            .withPhase("Pending")
            .withContainerStatuses(
                new ContainerStatusBuilder()
                    .withName("app")
                    .withRestartCount(0)
                    .withState(
                        new ContainerStateBuilder()
                            .withNewWaiting()
                            .withReason(reason)
                            .withMessage(message)
                            .endWaiting()
                            .build())
                    .build())
            .build());
    return p;
  }

  Restore tracking() {
    Restore r = restore();
    r.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(RestorePhase.Restoring, Reason.PodCreated, "created")
                .pod("back", "pod-uid"),
            NOW));
    return r;
  }

  @Test
  void theWrappersNotStagedYetIsWaitedForButItsOtherErrorsAndAFailedStageEndTheRestore() {
    Restore r = tracking();
    String notYet =
        "failed to create containerd task: stasis-runc: cannot restore container abc from"
            + " staged:"
            + UID
            + "/app: images not staged on this node yet after 90 s (the node agent stages them;"
            + " the kubelet retries)";
    RestoreDecider.Decision d = decide(r, null, waiting(r, "CreateContainerError", notYet));
    assertTrue(
        d.step() == null || d.step().phase() == RestorePhase.Restoring,
        "still restoring: " + (d.step() == null ? "" : d.step().message()));
    assertEquals(Duration.ofSeconds(2), d.recheckAfter());

    d = decide(r, null, waiting(r, "CreateContainerError", "stasis-runc: wrong key"));
    assertEquals(Reason.RestoredPodFailed, d.step().reason());

    r.setStatus(
        RestoreStatusAggregator.staged(
            r.getStatus(), 1, Reason.StageFailed, "storage secret ns/bad not found", NOW));
    d = decide(r, null, waiting(r, "ContainerCreating", null));
    assertEquals(RestorePhase.Failed, d.step().phase());
    assertEquals(Reason.StageFailed, d.step().reason());
    assertEquals(
        "pod ns/back: the node agent could not stage it: storage secret ns/bad not found",
        d.step().message());
  }

  /** A Migration's held Checkpoint: parent sets stored, final cut not taken yet. */
  Checkpoint held(Transition t) {
    Checkpoint c = checkpoint(null, null);
    c.getSpec().setHoldFinalFreeze(true);
    c.setStatus(StatusAggregator.next(null, 1, t, NOW));
    return c;
  }

  @Test
  void aRestoreOfAHeldCheckpointWaitsOnItsNodeInsteadOfFailing() {
    Restore r = restore();
    r.getSpec().setNodeName("n2");
    Checkpoint c =
        held(
            Transition.to(Phase.Running, Reason.ParentStored, "parents")
                .parentStored(NOW.toString(), 1));
    RestoreDecider.Decision d = decide(r, c, null);
    assertNull(d.create(), "no pod before the final cut");
    assertEquals(RestorePhase.Pending, d.step().phase());
    assertEquals("n2", d.step().nodeName(), "recorded: the node's agent may report ParentStaged");
    assertTrue(d.step().message().contains("holds its final cut"), d.step().message());

    // completed: the pod, every container staged by the agent that holds the parent
    Checkpoint done = checkpoint(null, null);
    done.getSpec().setHoldFinalFreeze(true);
    d = decide(r, done, null);
    assertEquals(
        "staged:" + UID + "/app",
        d.create().getMetadata().getAnnotations().get("restore-from.stasis.dev/app"));

    // failed while held: the Restore fails as for any checkpoint that is not Completed
    d = decide(r, held(Transition.failed(Reason.Cancelled, "cancelled")), null);
    assertEquals(RestorePhase.Failed, d.step().phase());
    assertEquals(Reason.CheckpointNotCompleted, d.step().reason());
  }
}
