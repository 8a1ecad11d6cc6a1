package dev.stasis.crds;

/** Lifecycle of a Restore. Completed and Failed are terminal. */
public enum RestorePhase {
  Pending,
  /** The pod is created; the runtime restores its containers. */
  Restoring,
  /** The pod is Ready. */
  Completed,
  Failed;

  public boolean terminal() {
    return this == Completed || this == Failed;
  }
}
