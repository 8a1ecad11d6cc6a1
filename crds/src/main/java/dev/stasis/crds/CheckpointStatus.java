package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.crd.generator.annotation.PreserveUnknownFields;
import io.fabric8.crd.generator.annotation.SchemaFrom;
import io.fabric8.kubernetes.api.model.Condition;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * Observed state of a Checkpoint. Written only through {@link StatusAggregator}, by the operator
 * until the agent claims the checkpoint and by the agent afterwards.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStatus {
  public Phase phase;

  @JsonPropertyDescription(
      "Accepted, Ready, Failed and Restorable, each with a reason; ParentStored with"
          + " spec.holdFinalFreeze.")
  public List<Condition> conditions = new ArrayList<>();

  public Long observedGeneration;
  public String nodeName;
  public String podUID;

  @JsonPropertyDescription("The containers being checkpointed and their runtime IDs.")
  public List<ContainerRef> containers = new ArrayList<>();

  @JsonPropertyDescription("Where the images are stored (set once complete).")
  public String location;

  @JsonPropertyDescription("Bytes stored so far; the total once Completed.")
  public Long sizeBytes;

  public Durations durations;
  public String startTime;
  public String completionTime;
  public String message;

  @JsonPropertyDescription(
      "When the cut froze the pod (RFC 3339 with milliseconds): a Migration's downtime starts here.")
  public String frozenAt;

  @JsonPropertyDescription(
      "With spec.holdFinalFreeze: when every container's parent image set (the pre-copy taken"
          + " while the pod ran) was stored (RFC 3339, milliseconds); condition ParentStored.")
  public String parentStoredAt;

  /**
   * The pod as a Restore recreates it, sanitized by {@link PodTemplates#sanitize}: written by the
   * node agent from the pod it read when it claimed the checkpoint. Not validated against the Pod
   * schema here (the API server validates the pod made from it).
   */
  @JsonPropertyDescription(
      "The checkpointed pod's labels, annotations and spec, sanitized (no status, node name or"
          + " service-account token volumes); a Restore creates its pod from it.")
  @PreserveUnknownFields
  @SchemaFrom(type = OpaqueObject.class)
  public PodTemplateSpec podTemplate;

  public CheckpointStatus copy() {
    CheckpointStatus c = new CheckpointStatus();
    c.phase = phase;
    c.conditions = Conditions.copy(conditions);
    c.observedGeneration = observedGeneration;
    c.nodeName = nodeName;
    c.podUID = podUID;
    c.containers = new ArrayList<>();
    for (ContainerRef r : containers) {
      c.containers.add(r.copy());
    }
    c.location = location;
    c.sizeBytes = sizeBytes;
    c.durations = durations == null ? null : durations.copy();
    c.startTime = startTime;
    c.completionTime = completionTime;
    c.message = message;
    c.frozenAt = frozenAt;
    c.parentStoredAt = parentStoredAt;
    c.podTemplate = podTemplate;
    return c;
  }

  /**
   * One container of the pod, its runtime ID (containerd://..., cri-o://...) and how far its part
   * of the checkpoint got. The pod's phase is derived from these (see {@link StatusAggregator}).
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class ContainerRef {
    public String name;
    public String containerID;

    @JsonPropertyDescription(
        "This container's step: Frozen, Dumping, Uploading, Stored (only ever moves forward).")
    public ContainerPhase phase;

    @JsonPropertyDescription("Bytes of this container's images written so far.")
    public Long sizeBytes;

    @JsonPropertyDescription(
        "The stored checkpoint's random id, as its manifest records it (authenticated when"
            + " encrypted); `stasis fetch --expect-id` accepts exactly this checkpoint.")
    public String checkpointID;

    public ContainerRef() {}

    public ContainerRef(String name, String containerID) {
      this.name = name;
      this.containerID = containerID;
    }

    public ContainerRef copy() {
      ContainerRef r = new ContainerRef(name, containerID);
      r.phase = phase;
      r.sizeBytes = sizeBytes;
      r.checkpointID = checkpointID;
      return r;
    }
  }

  /** One container's step within a pod checkpoint; the order is the only allowed direction. */
  public enum ContainerPhase {
    Frozen,
    Dumping,
    Uploading,
    Stored
  }

  /** Milliseconds spent in each step of the dump on the node. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class Durations {
    @JsonPropertyDescription("Freezing the containers' cgroups.")
    public Long freezeMillis;

    @JsonPropertyDescription("Time the workload was stopped, freeze to thaw.")
    public Long frozenMillis;

    @JsonPropertyDescription("Dumping the processes into images.")
    public Long dumpMillis;

    @JsonPropertyDescription("Finishing the upload after the dump (most bytes stream earlier).")
    public Long uploadMillis;

    public Durations copy() {
      Durations d = new Durations();
      d.freezeMillis = freezeMillis;
      d.frozenMillis = frozenMillis;
      d.dumpMillis = dumpMillis;
      d.uploadMillis = uploadMillis;
      return d;
    }
  }
}
