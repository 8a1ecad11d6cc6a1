package dev.stasis.crds;

import io.fabric8.kubernetes.api.model.Condition;
import java.util.List;

/** Condition bookkeeping shared by the Restore and Migration aggregators. */
final class Conditions {
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
