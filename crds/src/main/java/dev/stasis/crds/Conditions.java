package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Condition bookkeeping shared by the Checkpoint, Restore and Migration aggregators. */
final class Conditions {
  static final String ACCEPTED = "Accepted";
  static final String READY = "Ready";
  static final String FAILED = "Failed";

  private Conditions() {}

  static Condition find(List<Condition> conditions, String type) {
    if (conditions == null) {
      return null;
    }
    for (Condition c : conditions) {
      if (type.equals(c.getType())) {
        return c;
      }
    }
    return null;
  }

  /**
   * Sets a condition; its lastTransitionTime moves only when its status changes, and it always
   * carries the generation it describes.
   */
  static void set(
      List<Condition> conditions,
      String type,
      boolean status,
      Reason reason,
      String message,
      long generation,
      String ts) {
    String st = status ? "True" : "False";
    Condition old = find(conditions, type);
    String since =
        old != null && st.equals(old.getStatus()) && old.getLastTransitionTime() != null
            ? old.getLastTransitionTime()
            : ts;
    Condition c = new Condition(since, message, generation, reason.name(), st, type);
    if (old != null) {
      conditions.set(conditions.indexOf(old), c);
    } else {
      conditions.add(c);
    }
  }

  /**
   * The three conditions every stasis resource carries, from one step: {@code Accepted} (False with
   * the step's reason when it is a validation reason), {@code Ready} (True once completed) and
   * {@code Failed} (True once failed), all with the step's message.
   */
  static void setOutcome(
      List<Condition> conditions,
      boolean completed,
      boolean failed,
      Reason reason,
      String message,
      long generation,
      String ts) {
    boolean invalid = reason.validation();
    set(
        conditions,
        ACCEPTED,
        !invalid,
        invalid ? reason : Reason.Accepted,
        message,
        generation,
        ts);
    set(conditions, READY, completed, reason, message, generation, ts);
    set(conditions, FAILED, failed, reason, message, generation, ts);
  }

  static List<Condition> copy(List<Condition> in) {
    List<Condition> out = new java.util.ArrayList<>();
    for (Condition k : in) {
      out.add(
          new Condition(
              k.getLastTransitionTime(),
              k.getMessage(),
              k.getObservedGeneration(),
              k.getReason(),
              k.getStatus(),
              k.getType()));
    }
    return out;
  }
}
