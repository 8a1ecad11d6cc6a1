package dev.stasis.crds;

/**
 * Machine-readable reasons used in conditions and Events. Validation reasons mean the request
 * itself was wrong: nothing was frozen, seized or stored.
 */
public enum Reason {
  // Pending
  Accepted(false),
  WaitingForPreviousCheckpoint(false),
  Dispatched(false),
  // Running / Uploading / Completed
  Claimed(false),
  Freezing(false),
  Dumping(false),
  Uploading(false),
  Completed(false),
  // request errors (Failed before anything happened on the node)
  PodNotFound(true),
  PodNotRunning(true),
  PodNotScheduled(true),
  ContainerNotFound(true),
  ContainerNotStarted(true),
  StorageNotConfigured(true),
  /**
   * spec.storage.uri is not s3://, outside the allow-list, or uses default credentials elsewhere.
   */
  StorageNotAllowed(true),
  StorageSecretNotFound(true),
  StorageSecretInOtherNamespace(true),
  EncryptionSecretNotFound(true),
  EncryptionSecretInOtherNamespace(true),
  SpecChanged(true),
  // execution errors
  AgentUnavailable(false),
  AgentRestarted(false),
  TimedOut(false),
  ProcessNotFound(false),
  FreezeFailed(false),
  DumpFailed(false),
  StorageFailed(false),
  Cancelled(false),
  /**
   * leaveRunning: false refused before anything was frozen: the engine reports that the images of
   * this workload could not bring it back, so killing it would lose it.
   */
  NotRestorable(false),
  /** The pod the agent read is not the one accepted: other node, replaced (new UID). */
  PodChanged(false),
  // Restorable condition only
  Restorable(false),
  RestorabilityUnknown(false);

  private final boolean validation;

  Reason(boolean validation) {
    this.validation = validation;
  }

  /** True when the reason says the request was invalid (as opposed to execution failing). */
  public boolean validation() {
    return validation;
  }
}
