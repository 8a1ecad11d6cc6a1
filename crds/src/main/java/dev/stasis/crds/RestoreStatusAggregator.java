package dev.stasis.crds;

import java.time.Instant;
import java.time.temporal.ChronoUnit;

/**
 * The one place a Restore's status is computed. Pure: (current status, generation, step, clock) to
 * the next status.
 *
 * <p>Invariants: Completed and Failed are terminal (a step out of them returns the current status
 * unchanged); phases move only forward (Pending, Restoring, then terminal; a step back is a
 * programming error); conditions {@code Accepted}, {@code Ready} (pod Ready), {@code Failed} each
 * carry the generation they describe, and a condition's lastTransitionTime moves only when its
 * status does; facts a step does not mention (pod, node, location) are kept, and so are the node
 * agent's own conditions ({@link #STAGED}, {@link #PARENT_STAGED}) and {@code parentStagedAt}.
 */
public final class RestoreStatusAggregator {
  public static final String ACCEPTED = Conditions.ACCEPTED;
  public static final String READY = Conditions.READY;
  public static final String FAILED = Conditions.FAILED;

  /**
   * Written by the node agent for sources it stages (see {@link RestoreStaging}): False with {@link
   * Reason#Staging} while it fetches, True with {@link Reason#Staged} once every container's images
   * are verified on the node, False with {@link Reason#StageFailed} and the one-line reason when it
   * cannot (the operator then fails the Restore with that reason).
   */
  public static final String STAGED = "Staged";

  /**
   * Written by the target node's agent for a Restore whose Checkpoint reported ParentStored (a
   * Migration's pre-copy): True with {@link Reason#ParentStaged} once every container's parent
   * image set is verified in the staging area, False with {@link Reason#StageFailed} and the
   * one-line reason when it cannot. Like {@link #STAGED}, only the agent writes it and {@link
   * #next} keeps it.
   */
  public static final String PARENT_STAGED = "ParentStaged";

  private RestoreStatusAggregator() {}

  /** One observed step of a Restore; null facts leave the status field as it was. */
  public record Step(
      RestorePhase phase,
      Reason reason,
      String message,
      String podName,
      String podUID,
      String nodeName,
      String location) {
    public static Step to(RestorePhase phase, Reason reason, String message) {
      return new Step(phase, reason, message, null, null, null, null);
    }

    public static Step failed(Reason reason, String message) {
      return to(RestorePhase.Failed, reason, message);
    }

    public Step pod(String name, String uid) {
      return new Step(phase, reason, message, name, uid, nodeName, location);
    }

    public Step node(String node) {
      return new Step(phase, reason, message, podName, podUID, node, location);
    }

    public Step location(String where) {
      return new Step(phase, reason, message, podName, podUID, nodeName, where);
    }
  }

  public static RestoreStatus next(RestoreStatus current, long generation, Step t, Instant now) {
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    if (current != null
        && current.phase != null
        && !t.phase().terminal()
        && t.phase().ordinal() < current.phase.ordinal()) {
      throw new IllegalStateException(
          "restore cannot go back from " + current.phase + " to " + t.phase());
    }
    RestoreStatus s = current == null ? new RestoreStatus() : current.copy();
    String ts = now.truncatedTo(ChronoUnit.SECONDS).toString();
    s.phase = t.phase();
    s.message = t.message();
    s.observedGeneration = generation;
    if (t.podName() != null) {
      s.podName = t.podName();
    }
    if (t.podUID() != null) {
      s.podUID = t.podUID();
    }
    if (t.nodeName() != null) {
      s.nodeName = t.nodeName();
    }
    if (t.location() != null) {
      s.location = t.location();
    }
    if (s.startTime == null && t.phase() == RestorePhase.Restoring) {
      s.startTime = ts;
    }
    if (t.phase() == RestorePhase.Completed) {
      s.readyAt = now.truncatedTo(ChronoUnit.MILLIS).toString();
    }
    if (t.phase().terminal()) {
      s.completionTime = ts;
    }
    Conditions.setOutcome(
        s.conditions,
        t.phase() == RestorePhase.Completed,
        t.phase() == RestorePhase.Failed,
        t.reason(),
        t.message(),
        generation,
        ts);
    return s;
  }

  /**
   * The node agent's staging progress: only the {@link #STAGED} condition changes (phase, message
   * and the other conditions are the operator's). A terminal Restore is returned unchanged: there
   * is nothing left to stage for.
   */
  public static RestoreStatus staged(
      RestoreStatus current, long generation, Reason reason, String message, Instant now) {
    if (reason != Reason.Staging && reason != Reason.Staged && reason != Reason.StageFailed) {
      throw new IllegalArgumentException(reason + " is not a staging reason");
    }
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    RestoreStatus s = current == null ? new RestoreStatus() : current.copy();
    Conditions.set(
        s.conditions,
        STAGED,
        reason == Reason.Staged,
        reason,
        message,
        generation,
        now.truncatedTo(ChronoUnit.SECONDS).toString());
    return s;
  }

  /**
   * The target node agent's pre-staging of the parent image sets: only {@link #PARENT_STAGED} (and,
   * when staged, {@code parentStagedAt}) changes. A terminal Restore is returned unchanged.
   */
  public static RestoreStatus parentStaged(
      RestoreStatus current, long generation, Reason reason, String message, Instant now) {
    if (reason != Reason.ParentStaged && reason != Reason.StageFailed) {
      throw new IllegalArgumentException(reason + " is not a parent staging reason");
    }
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    RestoreStatus s = current == null ? new RestoreStatus() : current.copy();
    Conditions.set(
        s.conditions,
        PARENT_STAGED,
        reason == Reason.ParentStaged,
        reason,
        message,
        generation,
        now.truncatedTo(ChronoUnit.SECONDS).toString());
    if (reason == Reason.ParentStaged && s.parentStagedAt == null) {
      s.parentStagedAt = now.truncatedTo(ChronoUnit.MILLIS).toString();
    }
    return s;
  }

  /** The one-line reason when the agent reported that it could not pre-stage; else null. */
  public static String parentStageFailure(RestoreStatus s) {
    var c = condition(s, PARENT_STAGED);
    return c != null && Reason.StageFailed.name().equals(c.getReason()) ? c.getMessage() : null;
  }

  /** True once the agent reported every parent image set staged. */
  public static boolean isParentStaged(RestoreStatus s) {
    var c = condition(s, PARENT_STAGED);
    return c != null && "True".equals(c.getStatus());
  }

  /** The one-line reason when the node agent reported that it could not stage; else null. */
  public static String stageFailure(RestoreStatus s) {
    var c = condition(s, STAGED);
    return c != null && Reason.StageFailed.name().equals(c.getReason()) ? c.getMessage() : null;
  }

  public static io.fabric8.kubernetes.api.model.Condition condition(RestoreStatus s, String type) {
    return s == null ? null : Conditions.find(s.conditions, type);
  }
}
