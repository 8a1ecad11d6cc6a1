package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** Which pod to move where. Immutable once accepted. */
@ValidationRule(
    value = "self == oldSelf",
    message = "spec is immutable once the migration is accepted; create a new Migration")
@JsonInclude(JsonInclude.Include.NON_NULL)
public class MigrationSpec {
  @Required
  @JsonPropertyDescription("The pod to move, in the Migration's namespace.")
  private String podName;

  @Required
  @JsonPropertyDescription("The node the copy is restored on; must differ from the pod's node.")
  private String targetNode;

  @JsonPropertyDescription("Name of the copy; default: the Migration's name.")
  private String targetPodName;

  @JsonPropertyDescription("Where the checkpoint is stored; default: the operator's default store.")
  private CheckpointSpec.StorageSpec storage;

  @Default("none")
  @JsonPropertyDescription("Compression of the stored image files.")
  private CheckpointSpec.Compression compression = CheckpointSpec.Compression.none;

  @Default("true")
  @JsonPropertyDescription(
      "Pre-copy: store and stage the source's memory on the target while the source runs, then"
          + " freeze only for the delta (downtime = delta + restore); false checkpoints the whole"
          + " memory after the cut.")
  private Boolean preCopy = true;

  @Default("600")
  @Min(1)
  @Max(86400)
  @JsonPropertyDescription(
      "Seconds the whole migration may take (checkpoint, restore, copy Ready); past it the"
          + " migration fails and the source keeps running.")
  private Integer timeoutSeconds = 600;

  public String getPodName() {
    return podName;
  }

  public void setPodName(String podName) {
    this.podName = podName;
  }

  public String getTargetNode() {
    return targetNode;
  }

  public void setTargetNode(String targetNode) {
    this.targetNode = targetNode;
  }

  public String getTargetPodName() {
    return targetPodName;
  }

  public void setTargetPodName(String targetPodName) {
    this.targetPodName = targetPodName;
  }

  public CheckpointSpec.StorageSpec getStorage() {
    return storage;
  }

  public void setStorage(CheckpointSpec.StorageSpec storage) {
    this.storage = storage;
  }

  public CheckpointSpec.Compression getCompression() {
    return compression;
  }

  public void setCompression(CheckpointSpec.Compression compression) {
    this.compression = compression;
  }

  public Boolean getPreCopy() {
    return preCopy;
  }

  public void setPreCopy(Boolean preCopy) {
    this.preCopy = preCopy;
  }

  public boolean effectivePreCopy() {
    return preCopy == null || preCopy;
  }

  public Integer getTimeoutSeconds() {
    return timeoutSeconds;
  }

  public void setTimeoutSeconds(Integer timeoutSeconds) {
    this.timeoutSeconds = timeoutSeconds;
  }

  public int effectiveTimeoutSeconds() {
    return timeoutSeconds == null ? 600 : timeoutSeconds;
  }
}
