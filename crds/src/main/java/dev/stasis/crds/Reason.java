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
  /**
   * ParentStored=True: with spec.holdFinalFreeze every container's parent image set is stored; the
   * pod runs until the final-freeze annotation says go.
   */
  ParentStored(false),
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
  RestorabilityUnknown(false),

  // ---- Restore ----
  /** Neither or both of spec.checkpointName and spec.uri, or uri without template. */
  SourceInvalid(true),
  CheckpointNotFound(true),
  CheckpointNotCompleted(true),
  /** The Checkpoint's condition Restorable is False (the engine said a runtime could not). */
  CheckpointNotRestorable(true),
  /** The Checkpoint carries no pod template (taken by an agent older than the Restore API). */
  CheckpointHasNoPodTemplate(true),
  NodeNotFound(true),
  /** A pod of the wanted name exists and was not made by this Restore. */
  PodAlreadyExists(true),
  /** The API server refused the pod made from the template. */
  PodRejected(true),
  PodCreated(false),
  RestoredPodReady(false),
  RestoredPodFailed(false),
  RestoredPodDeleted(false),
  /** Staged=False: the node agent is fetching a source that needs the Restore's Secrets. */
  Staging(false),
  /** Staged=True: every such container's images are verified in the node's staging directory. */
  Staged(false),
  /** Staged=False, and the Restore fails: the agent could not fetch or verify the images. */
  StageFailed(false),
  /**
   * ParentStaged=True: every container's parent image set is verified in the target node's staging
   * area before the source's final cut (Migration pre-copy); False uses {@link #StageFailed}.
   */
  ParentStaged(false),

  // ---- Migration ----
  /** spec.targetNode is the node the pod already runs on. */
  TargetIsSourceNode(true),
  /**
   * The pod has a controller (a ReplicaSet, StatefulSet, DaemonSet, Job...): the controller would
   * adopt or replace the copy, so such pods are refused before anything is checkpointed.
   */
  PodHasController(true),
  Checkpointing(false),
  /** The source's parent sets are stored and being staged on the target; the source runs. */
  PreStaging(false),
  CheckpointFailed(false),
  Restoring(false),
  RestoreFailed(false),
  DeletingSource(false),
  Migrated(false),
  /** The source pod disappeared or was replaced while the migration ran. */
  SourceChanged(false),
  /** SourceRunning=True: nothing was done to the source, or it was left running on failure. */
  SourceLeftRunning(false),
  /** SourceRunning=False: the copy is Ready and the source was deleted. */
  SourceDeleted(false);

  private final boolean validation;

  Reason(boolean validation) {
    this.validation = validation;
  }

  /** True when the reason says the request was invalid (as opposed to execution failing). */
  public boolean validation() {
    return validation;
  }
}
