package dev.stasis.crds;

/** Lifecycle of a Migration. Completed and Failed are terminal. */
public enum MigrationPhase {
  Pending,
  /** The Checkpoint of the source is being taken (the source keeps running). */
  Checkpointing,
  /**
   * spec.preCopy: the source's memory is stored as parent sets and staged on the target node; the
   * source runs unfrozen until the target reports them staged.
   */
  PreStaging,
  /** The Restore of the copy on the target node runs; the source still serves. */
  Restoring,
  /** The copy is Ready; the source pod is being deleted. */
  DeletingSource,
  Completed,
  Failed;

  public boolean terminal() {
    return this == Completed || this == Failed;
  }
}
