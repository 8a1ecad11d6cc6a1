package dev.stasis.crds;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

/**
 * The one place a Migration's status is computed. Pure: (current status, generation, step, clock)
 * to the next status.
 *
 * <p>Invariants:
 *
 * <ul>
 *   <li>Completed and Failed are terminal; phases move only forward (Pending, Checkpointing,
 *       PreStaging with spec.preCopy, Restoring, DeletingSource, then terminal).
 *   <li>Conditions {@code Accepted}, {@code Ready} (migrated: copy Ready, source deleted), {@code
 *       Failed} and {@code SourceRunning} carry the generation they describe; lastTransitionTime
 *       moves only when the status does.
 *   <li>{@code SourceRunning} is True in every phase but Completed (the source is deleted only once
 *       the copy is Ready), and on failure, unless the step says the source itself went away
 *       ({@link Reason#SourceChanged}): a failed migration never leaves the pod stopped by us.
 *   <li>{@code downtimeMillis} = copyReadyAt - frozenAt, set as soon as both are known.
 * </ul>
 */
public final class MigrationStatusAggregator {
  public static final String ACCEPTED = Conditions.ACCEPTED;
  public static final String READY = Conditions.READY;
  public static final String FAILED = Conditions.FAILED;
  public static final String SOURCE_RUNNING = "SourceRunning";

  private MigrationStatusAggregator() {}

  /** One observed step; null facts leave the status field as it was. */
  public static final class Step {
    final MigrationPhase phase;
    final Reason reason;
    final String message;
    String sourceNode;
    String sourcePodUID;
    String checkpointName;
    String restoreName;
    String targetPodName;
    String frozenAt;
    String parentStagedAt;
    Instant copyReadyAt;

    private Step(MigrationPhase phase, Reason reason, String message) {
      this.phase = phase;
      this.reason = reason;
      this.message = message;
    }

    public static Step to(MigrationPhase phase, Reason reason, String message) {
      return new Step(phase, reason, message);
    }

    public static Step failed(Reason reason, String message) {
      return new Step(MigrationPhase.Failed, reason, message);
    }

    public Step source(String node, String podUID) {
      this.sourceNode = node;
      this.sourcePodUID = podUID;
      return this;
    }

    public Step checkpoint(String name) {
      this.checkpointName = name;
      return this;
    }

    public Step restore(String name, String targetPod) {
      this.restoreName = name;
      this.targetPodName = targetPod;
      return this;
    }

    /** When the checkpoint froze the source, as its status reports it (RFC 3339). */
    public Step frozenAt(String at) {
      this.frozenAt = at;
      return this;
    }

    /** When the target staged the parent image sets, as the Restore reports it (RFC 3339). */
    public Step parentStagedAt(String at) {
      this.parentStagedAt = at;
      return this;
    }

    public Step copyReadyAt(Instant at) {
      this.copyReadyAt = at;
      return this;
    }

    public MigrationPhase phase() {
      return phase;
    }

    public Reason reason() {
      return reason;
    }

    public String message() {
      return message;
    }
  }

  public static MigrationStatus next(
      MigrationStatus current, long generation, Step t, Instant now) {
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    if (current != null
        && current.phase != null
        && !t.phase.terminal()
        && t.phase.ordinal() < current.phase.ordinal()) {
      throw new IllegalStateException(
          "migration cannot go back from " + current.phase + " to " + t.phase);
    }
    MigrationStatus s = current == null ? new MigrationStatus() : current.copy();
    String ts = now.truncatedTo(ChronoUnit.SECONDS).toString();
    s.phase = t.phase;
    s.message = t.message;
    s.observedGeneration = generation;
    if (t.sourceNode != null) {
      s.sourceNode = t.sourceNode;
    }
    if (t.sourcePodUID != null) {
      s.sourcePodUID = t.sourcePodUID;
    }
    if (t.checkpointName != null) {
      s.checkpointName = t.checkpointName;
    }
    if (t.restoreName != null) {
      s.restoreName = t.restoreName;
    }
    if (t.targetPodName != null) {
      s.targetPodName = t.targetPodName;
    }
    if (t.frozenAt != null) {
      s.frozenAt = t.frozenAt;
    }
    if (t.parentStagedAt != null) {
      s.parentStagedAt = t.parentStagedAt;
    }
    if (t.copyReadyAt != null) {
      s.copyReadyAt = t.copyReadyAt.truncatedTo(ChronoUnit.MILLIS).toString();
    }
    if (s.frozenAt != null && s.copyReadyAt != null) {
      s.downtimeMillis =
          Math.max(
              0,
              Instant.parse(s.copyReadyAt).toEpochMilli()
                  - Instant.parse(s.frozenAt).toEpochMilli());
    }
    if (s.startTime == null && t.phase != MigrationPhase.Pending && !t.phase.terminal()) {
      s.startTime = ts;
    }
    if (t.phase.terminal()) {
      s.completionTime = ts;
    }
    Conditions.setOutcome(
        s.conditions,
        t.phase == MigrationPhase.Completed,
        t.phase == MigrationPhase.Failed,
        t.reason,
        t.message,
        generation,
        ts);
    boolean sourceGone = t.reason == Reason.SourceChanged;
    boolean migrated = t.phase == MigrationPhase.Completed;
    Conditions.set(
        s.conditions,
        SOURCE_RUNNING,
        !migrated && !sourceGone,
        migrated
            ? Reason.SourceDeleted
            : sourceGone ? Reason.SourceChanged : Reason.SourceLeftRunning,
        migrated
            ? "the copy " + s.targetPodName + " is Ready; the source pod was deleted"
            : sourceGone
                ? t.message
                : "the source pod keeps running"
                    + (t.phase == MigrationPhase.Failed ? "; the migration failed" : ""),
        generation,
        ts);
    return s;
  }

  public static io.fabric8.kubernetes.api.model.Condition condition(
      MigrationStatus s, String type) {
    return s == null ? null : Conditions.find(s.conditions, type);
  }
}
