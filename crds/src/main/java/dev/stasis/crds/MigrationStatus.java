package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/** Observed state of a Migration; written only through {@link MigrationStatusAggregator}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class MigrationStatus {
  @JsonPropertyDescription(
      "Pending, Checkpointing, PreStaging (spec.preCopy), Restoring, DeletingSource, then"
          + " Completed or Failed.")
  public MigrationPhase phase;

  @JsonPropertyDescription("Accepted, Ready, Failed and SourceRunning, each with a reason.")
  public List<Condition> conditions = new ArrayList<>();

  public Long observedGeneration;
  public String sourceNode;
  public String sourcePodUID;

  @JsonPropertyDescription("The Checkpoint this migration created.")
  public String checkpointName;

  @JsonPropertyDescription("The Restore this migration created.")
  public String restoreName;

  @JsonPropertyDescription("The copy's pod name.")
  public String targetPodName;

  @JsonPropertyDescription(
      "When the target node had the source's parent image sets staged (copied from the Restore).")
  public String parentStagedAt;

  @JsonPropertyDescription("When the checkpoint froze the source (RFC 3339, milliseconds).")
  public String frozenAt;

  @JsonPropertyDescription("When the operator saw the copy Ready (RFC 3339, milliseconds).")
  public String copyReadyAt;

  @JsonPropertyDescription(
      "frozenAt to copyReadyAt in milliseconds: how much of the source's history past the cut"
          + " the copy does not have, and the longest a client could not reach a Ready copy.")
  public Long downtimeMillis;

  public String startTime;
  public String completionTime;
  public String message;

  public MigrationStatus copy() {
    MigrationStatus c = new MigrationStatus();
    c.phase = phase;
    c.conditions = Conditions.copy(conditions);
    c.observedGeneration = observedGeneration;
    c.sourceNode = sourceNode;
    c.sourcePodUID = sourcePodUID;
    c.checkpointName = checkpointName;
    c.restoreName = restoreName;
    c.targetPodName = targetPodName;
    c.parentStagedAt = parentStagedAt;
    c.frozenAt = frozenAt;
    c.copyReadyAt = copyReadyAt;
    c.downtimeMillis = downtimeMillis;
    c.startTime = startTime;
    c.completionTime = completionTime;
    c.message = message;
    return c;
  }
}
