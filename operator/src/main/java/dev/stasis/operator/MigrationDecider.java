package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationPhase;
import dev.stasis.crds.MigrationSpec;
import dev.stasis.crds.MigrationStatus;
import dev.stasis.crds.MigrationStatusAggregator.Step;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Predicate;

/**
 * The Migration's decisions, free of I/O. The order of the steps is the safety argument:
 *
 * <ol>
 *   <li>a Checkpoint of the source with leaveRunning: true, so the source is thawed and keeps
 *       serving whatever happens next (the node agent thaws it on every path); with {@code
 *       spec.preCopy} (the default) it also holds its final freeze: the source agent stores each
 *       container's parent image set while the pod runs, reports ParentStored and waits;
 *   <li>a Restore of that checkpoint on the target node (the copy, named differently, runs beside
 *       the source); with pre-copy it is made on ParentStored (phase PreStaging): the target's
 *       agent stages the parent sets, reports the Restore's ParentStaged, and only then is the
 *       Checkpoint annotated {@code stasis.dev/final-freeze: go}, so the freeze covers only what
 *       changed since and the fetch after it only that delta (phase Restoring);
 *   <li>only once the Restore is Completed (the copy's pod Ready) the source pod is deleted, and
 *       only the pod with the UID recorded at the start, so a replacement of the same name is never
 *       touched.
 * </ol>
 *
 * Any failure before step 3 leaves the source as it is and deletes the copy; a Checkpoint still
 * holding its final freeze is deleted, which cancels it and releases the source. The Checkpoint and
 * the Restore are named after the Migration and owned by it, so a reconciliation that lost its
 * status write finds them again instead of creating them twice.
 */
final class MigrationDecider {
  /** What the reconciler read; null for what does not exist. */
  record Observed(
      Migration migration,
      Pod source,
      Predicate<String> nodeExists,
      Pod targetPodOfThatName,
      Checkpoint checkpoint,
      Restore restore,
      Instant now) {}

  /**
   * {@code step} null: status unchanged. {@code createCheckpoint}/{@code createRestore}: create it.
   * {@code deleteSourceUid}: delete the source pod if it still has this UID. {@code deleteCopy}:
   * delete the copy pod (if the Restore made it). {@code finalFreezeGo}: annotate the Checkpoint
   * {@code stasis.dev/final-freeze: go} (idempotent). {@code releaseCheckpoint}: delete the
   * Checkpoint, which still holds its final freeze (the source agent cancels and thaws).
   */
  record Decision(
      Step step,
      Checkpoint createCheckpoint,
      Restore createRestore,
      String deleteSourceUid,
      boolean deleteCopy,
      boolean finalFreezeGo,
      boolean releaseCheckpoint,
      Duration recheckAfter) {
    Decision(
        Step step,
        Checkpoint createCheckpoint,
        Restore createRestore,
        String deleteSourceUid,
        boolean deleteCopy,
        Duration recheckAfter) {
      this(
          step,
          createCheckpoint,
          createRestore,
          deleteSourceUid,
          deleteCopy,
          false,
          false,
          recheckAfter);
    }
  }

  private final Duration poll;

  MigrationDecider(Duration poll) {
    this.poll = poll;
  }

  static String targetPodName(Migration m) {
    String n = m.getSpec().getTargetPodName();
    return n == null || n.isEmpty() ? m.getMetadata().getName() : n;
  }

  Decision decide(Observed o) {
    Migration m = o.migration();
    MigrationStatus st = m.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      return none(null);
    }
    MigrationPhase phase = st == null || st.phase == null ? MigrationPhase.Pending : st.phase;
    if (phase == MigrationPhase.Pending) {
      return start(o);
    }
    if (phase != MigrationPhase.DeletingSource && sourceChanged(o)) {
      return rollback(
          o,
          Reason.SourceChanged,
          "source pod "
              + ref(o)
              + " was deleted or replaced during the migration; the copy was deleted");
    }
    Instant since = st.startTime == null ? null : Instant.parse(st.startTime);
    int timeout = m.getSpec().effectiveTimeoutSeconds();
    if (phase != MigrationPhase.DeletingSource
        && since != null
        && o.now().isAfter(since.plusSeconds(timeout))) {
      return rollback(
          o,
          Reason.TimedOut,
          "did not finish within timeoutSeconds=" + timeout + " (in phase " + phase + ")");
    }
    return switch (phase) {
      case Checkpointing -> checkpointing(o);
      case PreStaging -> preStaging(o);
      case Restoring -> restoring(o);
      case DeletingSource -> deletingSource(o);
      default -> none(poll);
    };
  }

  private Decision start(Observed o) {
    Migration m = o.migration();
    MigrationSpec spec = m.getSpec();
    Pod src = o.source();
    if (src == null) {
      return fail(Reason.PodNotFound, "pod " + ref(o) + " not found");
    }
    String podPhase = src.getStatus() == null ? null : src.getStatus().getPhase();
    if (!"Running".equals(podPhase)) {
      return fail(Reason.PodNotRunning, "pod " + ref(o) + " is " + podPhase + ", not Running");
    }
    String node = src.getSpec() == null ? null : src.getSpec().getNodeName();
    if (node == null || node.isEmpty()) {
      return fail(Reason.PodNotScheduled, "pod " + ref(o) + " has no node");
    }
    var controller = controllerOf(src);
    if (controller != null) {
      return fail(Reason.PodHasController, controlledMessage(o, controller));
    }
    if (!o.nodeExists().test(spec.getTargetNode())) {
      return fail(Reason.NodeNotFound, "target node " + spec.getTargetNode() + " not found");
    }
    if (node.equals(spec.getTargetNode())) {
      return fail(
          Reason.TargetIsSourceNode,
          "pod " + ref(o) + " already runs on " + node + "; name another target node");
    }
    Pod target = o.targetPodOfThatName();
    if (target != null && !ownedCopy(target, o.restore())) {
      return fail(
          Reason.PodAlreadyExists,
          "pod "
              + m.getMetadata().getNamespace()
              + "/"
              + targetPodName(m)
              + " already exists; name the copy with spec.targetPodName");
    }
    Checkpoint c = o.checkpoint();
    return new Decision(
        Step.to(
                MigrationPhase.Checkpointing,
                Reason.Checkpointing,
                "checkpointing pod " + ref(o) + " on " + node + " (it keeps running)")
            .source(node, src.getMetadata().getUid())
            .checkpoint(m.getMetadata().getName()),
        c != null && owned(c, m) ? null : checkpointFor(m),
        null,
        null,
        false,
        poll);
  }

  private Decision checkpointing(Observed o) {
    Migration m = o.migration();
    Checkpoint c = o.checkpoint();
    if (c == null || !owned(c, m)) {
      return rollback(o, Reason.CheckpointFailed, "checkpoint " + name(m) + " disappeared");
    }
    var cs = c.getStatus();
    if (cs == null || cs.phase == null || !cs.phase.terminal()) {
      var stored = StatusAggregator.condition(cs, StatusAggregator.PARENT_STORED);
      if (!held(c) || stored == null || !"True".equals(stored.getStatus())) {
        return none(poll);
      }
      // The parent sets are stored and the source runs on, unfrozen: stage them on the target
      // node now, so the final freeze waits only for the delta.
      Restore r = o.restore();
      return new Decision(
          Step.to(
                  MigrationPhase.PreStaging,
                  Reason.PreStaging,
                  "source holds ("
                      + stored.getMessage()
                      + "); pre-staging on "
                      + m.getSpec().getTargetNode()
                      + " while the source runs unfrozen")
              .restore(m.getMetadata().getName(), targetPodName(m)),
          null,
          r != null && owned(r, m) ? null : restoreFor(m),
          null,
          false,
          poll);
    }
    Decision failed = checkpointFailure(o);
    if (failed != null) {
      return failed;
    }
    return toRestoring(o, null, false);
  }

  /** The rollback when the Checkpoint failed or is not restorable; null while it is neither. */
  private Decision checkpointFailure(Observed o) {
    Migration m = o.migration();
    var cs = o.checkpoint().getStatus();
    if (cs == null || cs.phase == null) {
      return null;
    }
    if (cs.phase == Phase.Failed) {
      var failed = StatusAggregator.condition(cs, StatusAggregator.FAILED);
      return rollback(
          o,
          Reason.CheckpointFailed,
          "checkpoint "
              + name(m)
              + " failed ("
              + (failed == null ? "?" : failed.getReason())
              + "): "
              + cs.message
              + "; the source keeps running");
    }
    var restorable = StatusAggregator.condition(cs, StatusAggregator.RESTORABLE);
    if (cs.phase == Phase.Completed
        && restorable != null
        && "False".equals(restorable.getStatus())) {
      return rollback(
          o,
          Reason.CheckpointNotRestorable,
          "checkpoint " + name(m) + " is not restorable: " + restorable.getMessage());
    }
    return null;
  }

  /**
   * Into Restoring: the Restore is made if missing; {@code parentStagedAt} non-null when the target
   * staged the parent sets, {@code go} to release the source's final freeze.
   */
  private Decision toRestoring(Observed o, String parentStagedAt, boolean go) {
    Migration m = o.migration();
    Restore r = o.restore();
    var cs = o.checkpoint().getStatus();
    String what = "restoring the copy " + targetPodName(m) + " on " + m.getSpec().getTargetNode();
    return new Decision(
        Step.to(
                MigrationPhase.Restoring,
                Reason.Restoring,
                go
                    ? "parent image sets staged on "
                        + m.getSpec().getTargetNode()
                        + "; the source takes its final cut, then "
                        + what
                    : what)
            .restore(m.getMetadata().getName(), targetPodName(m))
            .frozenAt(cs == null ? null : cs.frozenAt)
            .parentStagedAt(parentStagedAt),
        null,
        r != null && owned(r, m) ? null : restoreFor(m),
        null,
        false,
        go,
        false,
        poll);
  }

  private Decision preStaging(Observed o) {
    Migration m = o.migration();
    Checkpoint c = o.checkpoint();
    if (c == null || !owned(c, m)) {
      return rollback(o, Reason.CheckpointFailed, "checkpoint " + name(m) + " disappeared");
    }
    Decision failed = checkpointFailure(o);
    if (failed != null) {
      return failed;
    }
    Restore r = o.restore();
    if (r == null || !owned(r, m)) {
      return rollback(o, Reason.RestoreFailed, "restore " + name(m) + " disappeared");
    }
    Decision restoreFailed = restoreFailure(o);
    if (restoreFailed != null) {
      return restoreFailed;
    }
    var rs = r.getStatus();
    String stageFailed = RestoreStatusAggregator.parentStageFailure(rs);
    if (stageFailed != null) {
      return rollback(
          o,
          Reason.StageFailed,
          "the node agent on "
              + m.getSpec().getTargetNode()
              + " could not stage the parent image sets: "
              + stageFailed
              + "; the source keeps running");
    }
    if (RestoreStatusAggregator.isParentStaged(rs)) {
      return toRestoring(o, rs.parentStagedAt, true);
    }
    var cs = c.getStatus();
    if (cs != null && cs.phase == Phase.Completed) {
      // completed without waiting for the go (an agent that does not hold): restore it as is
      return toRestoring(o, null, false);
    }
    return none(poll);
  }

  private Decision restoreFailure(Observed o) {
    var rs = o.restore().getStatus();
    if (rs == null || rs.phase != RestorePhase.Failed) {
      return null;
    }
    var failed = RestoreStatusAggregator.condition(rs, RestoreStatusAggregator.FAILED);
    return rollback(
        o,
        Reason.RestoreFailed,
        "the copy did not come up ("
            + (failed == null ? "?" : failed.getReason())
            + "): "
            + rs.message
            + "; the copy was deleted and the source keeps running");
  }

  private Decision restoring(Observed o) {
    Migration m = o.migration();
    MigrationStatus st = m.getStatus();
    Restore r = o.restore();
    if (r == null || !owned(r, m)) {
      return rollback(o, Reason.RestoreFailed, "restore " + name(m) + " disappeared");
    }
    Checkpoint c = o.checkpoint();
    String frozenAt =
        st.frozenAt == null && c != null && owned(c, m) && c.getStatus() != null
            ? c.getStatus().frozenAt
            : null;
    var rs = r.getStatus();
    if (rs == null || rs.phase == null || !rs.phase.terminal()) {
      // The go written before the status: a lost write of it is written again.
      boolean go = held(c, m) && !Labels.finalFreezeGo(c);
      if (frozenAt != null) {
        // the final cut is taken (pre-copy): downtime counts from it
        return new Decision(
            Step.to(
                    MigrationPhase.Restoring,
                    Reason.Restoring,
                    "the source's final cut froze it at "
                        + frozenAt
                        + "; restoring the copy "
                        + targetPodName(m)
                        + " on "
                        + m.getSpec().getTargetNode())
                .frozenAt(frozenAt),
            null,
            null,
            null,
            false,
            go,
            false,
            poll);
      }
      return new Decision(null, null, null, null, false, go, false, poll);
    }
    Decision failed = restoreFailure(o);
    if (failed != null) {
      return failed;
    }
    Pod src = o.source();
    return new Decision(
        Step.to(
                MigrationPhase.DeletingSource,
                Reason.DeletingSource,
                "the copy " + rs.podName + " is Ready on " + rs.nodeName + "; deleting the source")
            .copyReadyAt(rs.readyAt == null ? o.now() : Instant.parse(rs.readyAt))
            .frozenAt(frozenAt),
        null,
        null,
        src.getMetadata().getUid(),
        false,
        poll);
  }

  private Decision deletingSource(Observed o) {
    Migration m = o.migration();
    MigrationStatus st = m.getStatus();
    Pod src = o.source();
    if (src == null || !src.getMetadata().getUid().equals(st.sourcePodUID)) {
      return new Decision(
          Step.to(
              MigrationPhase.Completed,
              Reason.Migrated,
              "migrated to "
                  + m.getSpec().getTargetNode()
                  + " as "
                  + st.targetPodName
                  + "; downtime "
                  + st.downtimeMillis
                  + " ms"),
          null,
          null,
          null,
          false,
          null);
    }
    return new Decision(null, null, null, st.sourcePodUID, false, poll);
  }

  /** The pod's controlling owner reference ({@code controller: true}), or null. */
  static io.fabric8.kubernetes.api.model.OwnerReference controllerOf(Pod pod) {
    List<io.fabric8.kubernetes.api.model.OwnerReference> refs =
        pod.getMetadata().getOwnerReferences();
    return refs == null
        ? null
        : refs.stream()
            .filter(r -> Boolean.TRUE.equals(r.getController()))
            .findFirst()
            .orElse(null);
  }

  /**
   * Why a controlled pod is refused, and what to do instead. The copy carries the source's labels
   * and no owner: a ReplicaSet (or ReplicationController) whose selector matches adopts it, finds
   * one replica too many and deletes one of the two (by its own ranking, possibly the copy), and
   * once the source is deleted starts a fresh replica from scratch; a StatefulSet's, DaemonSet's or
   * Job's pod is the controller's by name or node and is re-created by it where it wants. Moving
   * such a pod needs the controller's cooperation (docs/restore.md, "Pods owned by a controller").
   */
  private static String controlledMessage(
      Observed o, io.fabric8.kubernetes.api.model.OwnerReference c) {
    String owner = c.getKind() + " " + c.getName();
    String what =
        switch (c.getKind()) {
          case "ReplicaSet", "ReplicationController" ->
              "it would adopt the copy (same labels) and delete one of the two, and replace the"
                  + " source with a fresh replica once it is deleted";
          case "StatefulSet", "DaemonSet" ->
              "it owns the pod by its name or node and would re-create it where it chooses";
          default -> "it would replace or ignore the copy";
        };
    return "pod "
        + ref(o)
        + " is controlled by "
        + owner
        + ": "
        + what
        + "; only pods without a controller are migrated (for a controller's pod, use a Restore"
        + " with podLabels outside its selector)";
  }

  private boolean sourceChanged(Observed o) {
    MigrationStatus st = o.migration().getStatus();
    Pod src = o.source();
    return src == null
        || (st.sourcePodUID != null && !st.sourcePodUID.equals(src.getMetadata().getUid()));
  }

  /** A Checkpoint named and owned by the migration: the source stays running. */
  static Checkpoint checkpointFor(Migration m) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(
        new ObjectMetaBuilder()
            .withName(name(m))
            .withNamespace(m.getMetadata().getNamespace())
            .withOwnerReferences(owner(m))
            .build());
    CheckpointSpec s = new CheckpointSpec();
    s.setPodName(m.getSpec().getPodName());
    s.setLeaveRunning(true);
    s.setHoldFinalFreeze(m.getSpec().effectivePreCopy());
    s.setStorage(m.getSpec().getStorage());
    s.setCompression(m.getSpec().getCompression());
    s.setTimeoutSeconds(m.getSpec().effectiveTimeoutSeconds());
    c.setSpec(s);
    return c;
  }

  static Restore restoreFor(Migration m) {
    Restore r = new Restore();
    r.setMetadata(
        new ObjectMetaBuilder()
            .withName(name(m))
            .withNamespace(m.getMetadata().getNamespace())
            .withOwnerReferences(owner(m))
            .build());
    RestoreSpec s = new RestoreSpec();
    s.setCheckpointName(name(m));
    s.setNodeName(m.getSpec().getTargetNode());
    s.setPodName(targetPodName(m));
    s.setTimeoutSeconds(m.getSpec().effectiveTimeoutSeconds());
    r.setSpec(s);
    return r;
  }

  private static io.fabric8.kubernetes.api.model.OwnerReference owner(Migration m) {
    return new OwnerReferenceBuilder()
        .withApiVersion(m.getApiVersion() == null ? "stasis.dev/v1alpha1" : m.getApiVersion())
        .withKind("Migration")
        .withName(m.getMetadata().getName())
        .withUid(m.getMetadata().getUid())
        .withController(true)
        .withBlockOwnerDeletion(false)
        .build();
  }

  static boolean owned(io.fabric8.kubernetes.api.model.HasMetadata o, Migration m) {
    List<io.fabric8.kubernetes.api.model.OwnerReference> refs =
        o.getMetadata().getOwnerReferences();
    return refs != null && refs.stream().anyMatch(x -> m.getMetadata().getUid().equals(x.getUid()));
  }

  /** A pod of the copy's name made by the Restore this migration owns. */
  private static boolean ownedCopy(Pod pod, Restore r) {
    return r != null && RestorePods.ours(pod, r);
  }

  private static String name(Migration m) {
    return m.getMetadata().getName();
  }

  private static String ref(Observed o) {
    return o.migration().getMetadata().getNamespace() + "/" + o.migration().getSpec().getPodName();
  }

  /**
   * Failed: the copy is deleted and the source left running; a Checkpoint still holding its final
   * freeze is deleted too, which cancels it (the source agent removes its tracking and lets the pod
   * run untouched).
   */
  private Decision rollback(Observed o, Reason reason, String message) {
    return new Decision(
        Step.failed(reason, message),
        null,
        null,
        null,
        true,
        false,
        held(o.checkpoint(), o.migration()),
        null);
  }

  /** The migration's own Checkpoint, with holdFinalFreeze, not over yet: it holds the source. */
  static boolean held(Checkpoint c, Migration m) {
    return c != null
        && owned(c, m)
        && held(c)
        && (c.getStatus() == null
            || c.getStatus().phase == null
            || !c.getStatus().phase.terminal());
  }

  static boolean held(Checkpoint c) {
    return c.getSpec() != null && c.getSpec().effectiveHoldFinalFreeze();
  }

  private static Decision fail(Reason reason, String message) {
    return new Decision(Step.failed(reason, message), null, null, null, false, null);
  }

  private static Decision none(Duration recheck) {
    return new Decision(null, null, null, null, false, recheck);
  }
}
