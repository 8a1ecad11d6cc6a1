package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.kubernetes.api.model.Condition;
import java.util.ArrayList;
import java.util.List;

/** Observed state of a Restore; written only through {@link RestoreStatusAggregator}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestoreStatus {
  @JsonPropertyDescription("Pending, Restoring (pod created), Completed (pod Ready) or Failed.")
  public RestorePhase phase;

  @JsonPropertyDescription(
      "Accepted, Ready and Failed, each with a reason; Staged when the node agent stages the"
          + " source (it needs Secrets the runtime wrapper does not have); ParentStaged when it"
          + " pre-stages a Migration's parent image sets.")
  public List<Condition> conditions = new ArrayList<>();

  public Long observedGeneration;

  @JsonPropertyDescription("The pod this Restore created.")
  public String podName;

  public String podUID;

  @JsonPropertyDescription("The node the new pod runs on (once scheduled).")
  public String nodeName;

  @JsonPropertyDescription("The checkpoint location restored from.")
  public String location;

  @JsonPropertyDescription(
      "When the target node's agent had every container's parent image set verified in its"
          + " staging area, before the source's final cut (Migration pre-copy); condition"
          + " ParentStaged.")
  public String parentStagedAt;

  public String startTime;

  @JsonPropertyDescription("When the operator saw the new pod Ready (RFC 3339, milliseconds).")
  public String readyAt;

  public String completionTime;
  public String message;

  public RestoreStatus copy() {
    RestoreStatus c = new RestoreStatus();
    c.phase = phase;
    c.conditions = Conditions.copy(conditions);
    c.observedGeneration = observedGeneration;
    c.podName = podName;
    c.podUID = podUID;
    c.nodeName = nodeName;
    c.location = location;
    c.parentStagedAt = parentStagedAt;
    c.startTime = startTime;
    c.readyAt = readyAt;
    c.completionTime = completionTime;
    c.message = message;
    return c;
  }
}
