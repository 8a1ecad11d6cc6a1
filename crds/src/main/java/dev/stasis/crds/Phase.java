package dev.stasis.crds;

/** Lifecycle of a Checkpoint. Completed and Failed are terminal: nothing leaves them. */
public enum Phase {
  Pending,
  Running,
  Uploading,
  Completed,
  Failed;

  public boolean terminal() {
    return this == Completed || this == Failed;
  }
}
