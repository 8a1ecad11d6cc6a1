package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.crd.generator.annotation.PreserveUnknownFields;
import io.fabric8.crd.generator.annotation.SchemaFrom;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import java.util.Map;

/** Where to restore from and what the new pod is called. Immutable once accepted. */
@ValidationRule(
    value = "self == oldSelf",
    message = "spec is immutable once the restore is accepted; create a new Restore")
@ValidationRule(
    value = "has(self.checkpointName) != has(self.uri)",
    message = "name exactly one of checkpointName and uri")
@ValidationRule(
    value = "!has(self.uri) || has(self.template)",
    message = "a restore from a uri needs the pod template")
@ValidationRule(
    value = "!has(self.encryption) || has(self.uri)",
    message = "encryption is given with uri; a Checkpoint names its own key")
@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestoreSpec {
  @JsonPropertyDescription("A Completed Checkpoint in the Restore's namespace to restore from.")
  private String checkpointName;

  @Pattern(StoragePolicy.URI_PATTERN)
  @JsonPropertyDescription(
      "Instead of checkpointName: the stored checkpoint's location s3://bucket/prefix; each"
          + " container of the template is restored from <uri>/<container name>.")
  private String uri;

  @JsonPropertyDescription(
      "With uri: Secret (same namespace) with the store's accessKey, secretKey, endpoint.")
  private CheckpointSpec.SecretRef credentialsSecretRef;

  @JsonPropertyDescription(
      "With uri: the Secret (same namespace) and key holding the key the checkpoint was encrypted"
          + " with. A source that needs a Secret is staged on the node by the node agent.")
  private CheckpointSpec.EncryptionSpec encryption;

  @JsonPropertyDescription(
      "With uri: the pod to create (labels, annotations, spec), as a Checkpoint's"
          + " status.podTemplate records it.")
  @PreserveUnknownFields
  @SchemaFrom(type = OpaqueObject.class)
  private PodTemplateSpec template;

  @JsonPropertyDescription(
      "Node to restore on (the pod is pinned there by node affinity); empty: the scheduler"
          + " chooses.")
  private String nodeName;

  @JsonPropertyDescription("Name of the new pod; default: the Restore's name.")
  private String podName;

  @JsonPropertyDescription(
      "Labels of the new pod; default: the checkpointed pod's labels. Give labels a controller"
          + " does not select when the source pod is owned by one (it would adopt the copy).")
  private Map<String, String> podLabels;

  @Default("300")
  @Min(1)
  @Max(86400)
  @JsonPropertyDescription("Seconds the new pod may take to become Ready.")
  private Integer timeoutSeconds = 300;

  public String getCheckpointName() {
    return checkpointName;
  }

  public void setCheckpointName(String checkpointName) {
    this.checkpointName = checkpointName;
  }

  public String getUri() {
    return uri;
  }

  public void setUri(String uri) {
    this.uri = uri;
  }

  public CheckpointSpec.SecretRef getCredentialsSecretRef() {
    return credentialsSecretRef;
  }

  public void setCredentialsSecretRef(CheckpointSpec.SecretRef credentialsSecretRef) {
    this.credentialsSecretRef = credentialsSecretRef;
  }

  public CheckpointSpec.EncryptionSpec getEncryption() {
    return encryption;
  }

  public void setEncryption(CheckpointSpec.EncryptionSpec encryption) {
    this.encryption = encryption;
  }

  public PodTemplateSpec getTemplate() {
    return template;
  }

  public void setTemplate(PodTemplateSpec template) {
    this.template = template;
  }

  public String getNodeName() {
    return nodeName;
  }

  public void setNodeName(String nodeName) {
    this.nodeName = nodeName;
  }

  public String getPodName() {
    return podName;
  }

  public void setPodName(String podName) {
    this.podName = podName;
  }

  public Map<String, String> getPodLabels() {
    return podLabels;
  }

  public void setPodLabels(Map<String, String> podLabels) {
    this.podLabels = podLabels;
  }

  public Integer getTimeoutSeconds() {
    return timeoutSeconds;
  }

  public void setTimeoutSeconds(Integer timeoutSeconds) {
    this.timeoutSeconds = timeoutSeconds;
  }

  public int effectiveTimeoutSeconds() {
    return timeoutSeconds == null ? 300 : timeoutSeconds;
  }
}
