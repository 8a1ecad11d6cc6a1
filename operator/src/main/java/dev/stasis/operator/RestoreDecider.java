package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStaging;
import dev.stasis.crds.RestoreStatus;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.RestoreStatusAggregator.Step;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.StoragePolicy;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * The Restore's decisions, free of I/O: from what the reconciler read (the Restore, the Checkpoint
 * it names, which Secrets and nodes exist, the pod of the wanted name, the clock) to what it must
 * write (a status step, the pod to create).
 */
final class RestoreDecider {
  /** What the reconciler read. {@code checkpoint}, {@code pod}: null when absent. */
  record Observed(
      Restore restore,
      Checkpoint checkpoint,
      Predicate<String> secretExists,
      Predicate<String> nodeExists,
      Pod pod,
      Instant now) {}

  /** {@code step} null: status unchanged; {@code create} non-null: create this pod. */
  record Decision(Step step, Pod create, Duration recheckAfter) {}

  private final Duration poll;
  private final String runtimeClass;
  private final Optional<String> defaultStorageUri;
  private final List<String> allowedStorage;

  /**
   * {@code defaultStorageUri} and {@code allowedStorage} are the Checkpoints' store rules ({@link
   * StoragePolicy}); a Restore by {@code spec.uri} obeys them too, because without a Secret the
   * runtime wrapper fetches it with the node's default credentials.
   */
  RestoreDecider(
      Duration poll,
      String runtimeClass,
      Optional<String> defaultStorageUri,
      List<String> allowedStorage) {
    this.poll = poll;
    this.runtimeClass = runtimeClass;
    this.defaultStorageUri = defaultStorageUri;
    this.allowedStorage = List.copyOf(allowedStorage);
  }

  Decision decide(Observed o) {
    Restore r = o.restore();
    RestoreStatus st = r.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      return new Decision(null, null, null);
    }
    if (st == null || st.phase == null || st.phase == RestorePhase.Pending) {
      return validateAndCreate(o);
    }
    return track(o);
  }

  private Decision validateAndCreate(Observed o) {
    Restore r = o.restore();
    RestoreSpec spec = r.getSpec();
    String ns = r.getMetadata().getNamespace();
    boolean byName = spec.getCheckpointName() != null && !spec.getCheckpointName().isEmpty();
    boolean byUri = spec.getUri() != null && !spec.getUri().isEmpty();
    if (byName == byUri) {
      return fail(Reason.SourceInvalid, "name exactly one of spec.checkpointName and spec.uri");
    }
    PodTemplateSpec template;
    String location;
    List<String> containers;
    if (byName) {
      Checkpoint c = o.checkpoint();
      String ref = "checkpoint " + ns + "/" + spec.getCheckpointName();
      if (c == null) {
        return fail(Reason.CheckpointNotFound, ref + " not found");
      }
      var cs = c.getStatus();
      if (waitsForFinalCut(c)) {
        // A migration's pre-copy: the Restore exists early so that the target node's agent
        // stages the parent image sets while the source runs; the pod comes once the final cut
        // is stored. The node is recorded now: the agent reports ParentStaged only on a Restore
        // recorded on its own node (the chart's admission policy).
        String node = spec.getNodeName();
        if (node != null && !node.isEmpty() && !o.nodeExists().test(node)) {
          return fail(Reason.NodeNotFound, "node " + node + " not found");
        }
        boolean onNode = node != null && !node.isEmpty();
        return new Decision(
            Step.to(
                    RestorePhase.Pending,
                    Reason.PreStaging,
                    ref
                        + " holds its final cut"
                        + (onNode
                            ? "; the node agent on " + node + " stages its parent image sets"
                            : "")
                        + "; the pod is created once it is Completed")
                .node(onNode ? node : null),
            null,
            poll);
      }
      if (cs == null || cs.phase != Phase.Completed) {
        return fail(
            Reason.CheckpointNotCompleted,
            ref + " is " + (cs == null ? "new" : cs.phase) + ", not Completed");
      }
      var restorable = StatusAggregator.condition(cs, StatusAggregator.RESTORABLE);
      if (restorable != null && "False".equals(restorable.getStatus())) {
        return fail(
            Reason.CheckpointNotRestorable, ref + " is not restorable: " + restorable.getMessage());
      }
      if (cs.podTemplate == null || cs.podTemplate.getSpec() == null) {
        return fail(
            Reason.CheckpointHasNoPodTemplate,
            ref + " carries no pod template (taken by a node agent without the Restore API)");
      }
      template = cs.podTemplate;
      location = cs.location;
      containers = cs.containers.stream().map(x -> x.name).toList();
    } else {
      if (spec.getTemplate() == null
          || spec.getTemplate().getSpec() == null
          || spec.getTemplate().getSpec().getContainers() == null
          || spec.getTemplate().getSpec().getContainers().isEmpty()) {
        return fail(Reason.SourceInvalid, "spec.uri needs spec.template with its containers");
      }
      CheckpointSpec.SecretRef secret = spec.getCredentialsSecretRef();
      // The same rules as a Checkpoint's store: s3:// only, under the admin's allow-list, and
      // without a Secret only the default store's prefix of this namespace (the wrapper would
      // otherwise read another namespace's checkpoint, or any bucket, with the node's defaults).
      String notAllowed =
          StoragePolicy.restoreViolation(
              ns, spec.getUri(), secret, defaultStorageUri, allowedStorage);
      if (notAllowed != null) {
        return fail(Reason.StorageNotAllowed, notAllowed);
      }
      if (secret != null) {
        if (secret.getNamespace() != null
            && !secret.getNamespace().isEmpty()
            && !secret.getNamespace().equals(ns)) {
          return fail(
              Reason.StorageSecretInOtherNamespace,
              "storage secret "
                  + secret.getNamespace()
                  + "/"
                  + secret.getName()
                  + " is not in the restore's namespace "
                  + ns
                  + "; only same-namespace secrets may be used");
        }
        if (!o.secretExists().test(secret.getName())) {
          return fail(
              Reason.StorageSecretNotFound,
              "storage secret " + ns + "/" + secret.getName() + " not found");
        }
      }
      CheckpointSpec.EncryptionSpec enc = spec.getEncryption();
      if (enc != null && enc.getKeySecretRef() != null) {
        CheckpointSpec.SecretRef key = enc.getKeySecretRef();
        if (key.getNamespace() != null
            && !key.getNamespace().isEmpty()
            && !key.getNamespace().equals(ns)) {
          return fail(
              Reason.EncryptionSecretInOtherNamespace,
              "encryption key secret "
                  + key.getNamespace()
                  + "/"
                  + key.getName()
                  + " is not in the restore's namespace "
                  + ns
                  + "; only same-namespace secrets may be used");
        }
        if (!o.secretExists().test(key.getName())) {
          return fail(
              Reason.EncryptionSecretNotFound,
              "encryption key secret " + ns + "/" + key.getName() + " not found");
        }
      }
      template = spec.getTemplate();
      location = spec.getUri();
      containers =
          spec.getTemplate().getSpec().getContainers().stream().map(Container::getName).toList();
    }
    String node = spec.getNodeName();
    if (node != null && !node.isEmpty() && !o.nodeExists().test(node)) {
      return fail(Reason.NodeNotFound, "node " + node + " not found");
    }
    String podName = RestorePods.podName(r);
    Pod existing = o.pod();
    if (existing != null) {
      if (!RestorePods.ours(existing, r)) {
        return fail(
            Reason.PodAlreadyExists,
            "pod " + ns + "/" + podName + " already exists and was not made by this Restore");
      }
      // Made by us before a crash or a lost status write: track it.
      return new Decision(
          Step.to(RestorePhase.Restoring, Reason.PodCreated, "pod " + podName + " created")
              .pod(podName, existing.getMetadata().getUid())
              .location(location),
          null,
          poll);
    }
    // Sources the runtime wrapper cannot fetch with the node's defaults are staged on the node by
    // the node agent, which reads the namespace's Secrets (RestoreStaging).
    String staging = RestoreStaging.why(spec, byName ? o.checkpoint().getSpec() : null);
    if (staging == null && byName && MigrationDecider.held(o.checkpoint())) {
      staging = "its parent image sets pre-staged";
    }
    Pod pod = RestorePods.build(r, template, location, containers, runtimeClass, staging != null);
    return new Decision(
        Step.to(
                RestorePhase.Restoring,
                Reason.PodCreated,
                "pod "
                    + podName
                    + " created with runtime class "
                    + runtimeClass
                    + (node == null || node.isEmpty() ? "" : " on node " + node)
                    + "; restoring "
                    + String.join(", ", containers)
                    + " from "
                    + location
                    + (staging == null
                        ? ""
                        : " (staged on the node by the node agent: it needs " + staging + ")"))
            .pod(podName, null)
            .location(location),
        pod,
        poll);
  }

  /**
   * A Checkpoint with holdFinalFreeze that is not over: its final cut is still to come (the source
   * waits for the go that a Migration gives once the parent sets are staged). Not a failure.
   */
  static boolean waitsForFinalCut(Checkpoint c) {
    var cs = c.getStatus();
    return MigrationDecider.held(c) && (cs == null || cs.phase == null || !cs.phase.terminal());
  }

  private Decision track(Observed o) {
    Restore r = o.restore();
    RestoreStatus st = r.getStatus();
    String podRef = "pod " + r.getMetadata().getNamespace() + "/" + st.podName;
    Pod pod = o.pod();
    if (pod == null || !RestorePods.ours(pod, r)) {
      return fail(Reason.RestoredPodDeleted, podRef + " was deleted before it became Ready");
    }
    String stage = RestoreStatusAggregator.stageFailure(st);
    if (stage != null) {
      return fail(Reason.StageFailed, podRef + ": the node agent could not stage it: " + stage);
    }
    String failure = RestorePods.failure(pod);
    if (failure != null) {
      return fail(Reason.RestoredPodFailed, podRef + ": " + failure);
    }
    String node = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    if (RestorePods.ready(pod)) {
      return new Decision(
          Step.to(RestorePhase.Completed, Reason.RestoredPodReady, podRef + " is Ready")
              .pod(st.podName, pod.getMetadata().getUid())
              .node(node),
          null,
          null);
    }
    Instant since = st.startTime == null ? null : Instant.parse(st.startTime);
    int timeout = r.getSpec().effectiveTimeoutSeconds();
    if (since != null && o.now().isAfter(since.plusSeconds(timeout))) {
      return fail(
          Reason.TimedOut, podRef + " did not become Ready within timeoutSeconds=" + timeout);
    }
    boolean news =
        (node != null && !node.equals(st.nodeName))
            || (st.podUID == null && pod.getMetadata().getUid() != null);
    return new Decision(
        news
            ? Step.to(
                    RestorePhase.Restoring,
                    Reason.PodCreated,
                    podRef
                        + (node == null ? " created" : " scheduled on " + node)
                        + ", not Ready yet")
                .pod(st.podName, pod.getMetadata().getUid())
                .node(node)
            : null,
        null,
        poll);
  }

  private static Decision fail(Reason reason, String message) {
    return new Decision(Step.failed(reason, message), null, null);
  }
}
