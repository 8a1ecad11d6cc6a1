package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.Condition;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
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
 *   <li>A pod checkpoint is one phase over several containers: a transition naming a container
 *       moves only that container's step forward (a step back is ignored), and the pod's phase is
 *       derived from all of them: Uploading once every container reached Uploading, Running before.
 *       sizeBytes is then the sum over the containers.
 *   <li>{@code Restorable} is set from the engine's restorability warnings whenever a transition
 *       carries them: True when there are none, False with the warnings as message otherwise.
 *   <li>{@code ParentStored} (and {@code parentStoredAt}) is set True once, by the transition that
 *       carries {@link Transition#parentStored}; later transitions keep it.
 *   <li>Conditions: {@code Accepted} (request valid), {@code Ready} (images complete in the store),
 *       {@code Failed} (with the failure reason). A condition's lastTransitionTime changes only
 *       when its status does; every condition carries the generation it describes.
 * </ul>
 */
public final class StatusAggregator {
  public static final String ACCEPTED = Conditions.ACCEPTED;
  public static final String READY = Conditions.READY;
  public static final String FAILED = Conditions.FAILED;
  public static final String RESTORABLE = "Restorable";

  /**
   * With {@code spec.holdFinalFreeze}: True (reason {@link Reason#ParentStored}, message naming the
   * parent bytes, and the containers without a parent set when there are) once the agent stored
   * every parent image set its containers' live copies made; it then holds the pod running until
   * {@link Labels#FINAL_FREEZE} says go. Never set otherwise.
   */
  public static final String PARENT_STORED = "ParentStored";

  private StatusAggregator() {}

  /** Returns the next status, or {@code current} itself when the checkpoint already ended. */
  public static CheckpointStatus next(
      CheckpointStatus current, long generation, Transition t, Instant now) {
    if (current != null && current.phase != null && current.phase.terminal()) {
      return current;
    }
    boolean perContainer = t.container != null && !t.phase.terminal();
    if (!perContainer
        && current != null
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
      s.containers = new ArrayList<>();
      t.containers.forEach(r -> s.containers.add(r.copy()));
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
    if (t.podTemplate != null) {
      s.podTemplate = t.podTemplate;
    }
    if (t.frozenAt != null) {
      s.frozenAt = t.frozenAt;
    }
    if (t.parentStoredAt != null) {
      s.parentStoredAt = t.parentStoredAt;
      Conditions.set(
          s.conditions,
          PARENT_STORED,
          true,
          Reason.ParentStored,
          (t.parentSummary != null
                  ? t.parentSummary + "; the pod runs"
                  : "parent image sets stored (" + t.parentBytes + " bytes) while the pod runs")
              + "; the final cut waits for "
              + Labels.FINAL_FREEZE
              + ": "
              + Labels.FINAL_FREEZE_GO,
          generation,
          ts);
    }
    if (perContainer) {
      s.phase = podPhase(s, t, current == null ? null : current.phase);
    }
    if (t.phase == Phase.Completed) {
      for (CheckpointStatus.ContainerRef r : s.containers) {
        r.phase = CheckpointStatus.ContainerPhase.Stored;
        if (t.checkpointIds != null && t.checkpointIds.containsKey(r.name)) {
          r.checkpointID = t.checkpointIds.get(r.name);
        }
      }
    }
    if (s.startTime == null && (t.phase == Phase.Running || t.phase == Phase.Uploading)) {
      s.startTime = ts;
    }
    if (t.phase.terminal()) {
      s.completionTime = ts;
    }

    Conditions.setOutcome(
        s.conditions,
        t.phase == Phase.Completed,
        t.phase == Phase.Failed,
        t.reason,
        t.message,
        generation,
        ts);
    if (t.restorabilityWarnings != null) {
      boolean ok = t.restorabilityWarnings.isEmpty();
      Conditions.set(
          s.conditions,
          RESTORABLE,
          ok,
          ok ? Reason.Restorable : Reason.NotRestorable,
          ok
              ? "the engine reported nothing that would keep a runtime from restoring the images"
              : String.join("; ", t.restorabilityWarnings),
          generation,
          ts);
    }
    return s;
  }

  /**
   * Moves the named container's step forward (never back) and derives the pod's phase from all
   * containers; the pod's phase itself never moves back either.
   */
  private static Phase podPhase(CheckpointStatus s, Transition t, Phase current) {
    List<CheckpointStatus.ContainerRef> refs = new ArrayList<>(s.containers);
    CheckpointStatus.ContainerRef ref = null;
    for (CheckpointStatus.ContainerRef r : refs) {
      if (t.container.equals(r.name)) {
        ref = r;
      }
    }
    if (ref == null) {
      ref = new CheckpointStatus.ContainerRef(t.container, null);
      refs.add(ref);
    }
    if (ref.phase == null || t.containerPhase.ordinal() >= ref.phase.ordinal()) {
      ref.phase = t.containerPhase;
      if (t.containerBytes != null) {
        ref.sizeBytes = t.containerBytes;
      }
    }
    s.containers = refs;
    long sum = 0;
    boolean anyBytes = false;
    boolean allUploading = true;
    for (CheckpointStatus.ContainerRef r : refs) {
      if (r.sizeBytes != null) {
        sum += r.sizeBytes;
        anyBytes = true;
      }
      if (r.phase == null
          || r.phase.ordinal() < CheckpointStatus.ContainerPhase.Uploading.ordinal()) {
        allUploading = false;
      }
    }
    if (anyBytes) {
      s.sizeBytes = sum;
    }
    Phase derived = allUploading ? Phase.Uploading : Phase.Running;
    return current != null && current.ordinal() > derived.ordinal() ? current : derived;
  }

  /** The condition of the given type, or null. */
  public static Condition condition(CheckpointStatus s, String type) {
    return s == null ? null : Conditions.find(s.conditions, type);
  }
}
