package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * The one place a Checkpoint's status is computed. Pure: (current status, generation, transition,
 * clock) to the next status; the operator and the agent only write what this returns.
 *
 * <p>Invariants:
 *
 * <ul>
 *   <li>Completed and Failed are terminal: a transition out of them is ignored (racing writers,
 *       e.g. an agent finishing just after the operator timed it out, see the status unchanged).
 *   <li>Phases only move forward (Pending, Running, Uploading, then a terminal phase); a backward
 *       step is a programming error.
 *   <li>Conditions: {@code Accepted} (request valid), {@code Ready} (images complete in the store),
 *       {@code Failed} (with the failure reason). A condition's lastTransitionTime changes only
 *       when its status does; every condition carries the generation it describes.
 * </ul>
 */
public final class StatusAggregator {
  public static final String ACCEPTED = "Accepted";
  public static final String READY = "Ready";
  public static final String FAILED = "Failed";

  private StatusAggregator() {}

  /** Returns the next status, or {@code current} itself when the checkpoint already ended. */
  public static CheckpointStatus next(
      CheckpointStatus current, long generation, Transition t, Instant now) {
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    if (current != null
        && current.phase != null
        && t.phase.ordinal() < current.phase.ordinal()
        && !t.phase.terminal()) {
      throw new IllegalStateException(
          "checkpoint cannot go back from " + current.phase + " to " + t.phase);
    }
    CheckpointStatus s = current == null ? new CheckpointStatus() : current.copy();
    String ts = now.truncatedTo(ChronoUnit.SECONDS).toString();
    s.phase = t.phase;
    s.message = t.message;
    s.observedGeneration = generation;
    if (t.nodeName != null) {
      s.nodeName = t.nodeName;
    }
    if (t.podUID != null) {
      s.podUID = t.podUID;
    }
    if (t.containers != null) {
      s.containers = List.copyOf(t.containers);
    }
    if (t.location != null) {
      s.location = t.location;
    }
    if (t.sizeBytes != null) {
      s.sizeBytes = t.sizeBytes;
    }
    if (t.durations != null) {
      s.durations = t.durations.copy();
    }
    if (s.startTime == null && (t.phase == Phase.Running || t.phase == Phase.Uploading)) {
      s.startTime = ts;
    }
    if (t.phase.terminal()) {
      s.completionTime = ts;
    }

    // Validation reasons are only ever produced before anything touched the workload.
    boolean invalid = t.reason.validation();
    set(
        s,
        ACCEPTED,
        invalid ? "False" : "True",
        invalid ? t.reason : Reason.Accepted,
        t,
        generation,
        ts);
    set(s, READY, t.phase == Phase.Completed ? "True" : "False", t.reason, t, generation, ts);
    set(s, FAILED, t.phase == Phase.Failed ? "True" : "False", t.reason, t, generation, ts);
    return s;
  }

  /** The condition of the given type, or null. */
  public static Condition condition(CheckpointStatus s, String type) {
    if (s == null) {
      return null;
    }
    for (Condition c : s.conditions) {
      if (type.equals(c.getType())) {
        return c;
      }
    }
    return null;
  }

  private static void set(
      CheckpointStatus s,
      String type,
      String status,
      Reason reason,
      Transition t,
      long generation,
      String ts) {
    Condition old = condition(s, type);
    String since =
        old != null && status.equals(old.getStatus()) && old.getLastTransitionTime() != null
            ? old.getLastTransitionTime()
            : ts;
    Condition c = new Condition(since, t.message, generation, reason.name(), status, type);
    if (old != null) {
      s.conditions.set(s.conditions.indexOf(old), c);
    } else {
      s.conditions.add(c);
    }
  }
}
