package dev.stasis.crds;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import io.fabric8.generator.annotation.Max;
import io.fabric8.generator.annotation.Min;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;
import java.util.ArrayList;
import java.util.List;

/** What to checkpoint and where to put it. Immutable once accepted. */
@ValidationRule(
    value = "self == oldSelf",
    message = "spec is immutable once the checkpoint is accepted; create a new Checkpoint")
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointSpec {
  @Required
  @JsonPropertyDescription("Name of the pod to checkpoint, in the Checkpoint's namespace.")
  private String podName;

  @JsonPropertyDescription("Names of the containers to checkpoint; empty means all of them.")
  private List<String> containers = new ArrayList<>();

  @Default("true")
  @JsonPropertyDescription("Let the workload continue after the dump (true) or kill it (false).")
  private Boolean leaveRunning = true;

  @Default("false")
  @JsonPropertyDescription(
      "Pre-copy the pod while it runs, store every container's parent image set, report"
          + " ParentStored, then take the final cut only once the Checkpoint carries the"
          + " annotation stasis.dev/final-freeze: go (timeoutSeconds and deletion still bound the"
          + " wait). Used by a Migration to stage the bulk of the memory before the freeze.")
  private Boolean holdFinalFreeze = false;

  @Default("300")
  @Min(1)
  @Max(86400)
  @JsonPropertyDescription(
      "Seconds the whole checkpoint may take, including waiting for the node agent.")
  private Integer timeoutSeconds = 300;

  @JsonPropertyDescription(
      "Where to store the images; the operator's configured default store when absent.")
  private StorageSpec storage;

  @Default("none")
  @JsonPropertyDescription("Compression of the stored image files.")
  private Compression compression = Compression.none;

  @JsonPropertyDescription("Client-side encryption (AES-GCM) of the stored image files.")
  private EncryptionSpec encryption;

  @Default("Retain")
  @JsonPropertyDescription("Whether deleting the Checkpoint also deletes the stored images.")
  private DeletionPolicy deletionPolicy = DeletionPolicy.Retain;

  public String getPodName() {
    return podName;
  }

  public void setPodName(String podName) {
    this.podName = podName;
  }

  public List<String> getContainers() {
    return containers;
  }

  public void setContainers(List<String> containers) {
    this.containers = containers;
  }

  public Boolean getLeaveRunning() {
    return leaveRunning;
  }

  public void setLeaveRunning(Boolean leaveRunning) {
    this.leaveRunning = leaveRunning;
  }

  public Boolean getHoldFinalFreeze() {
    return holdFinalFreeze;
  }

  public void setHoldFinalFreeze(Boolean holdFinalFreeze) {
    this.holdFinalFreeze = holdFinalFreeze;
  }

  public Integer getTimeoutSeconds() {
    return timeoutSeconds;
  }

  public void setTimeoutSeconds(Integer timeoutSeconds) {
    this.timeoutSeconds = timeoutSeconds;
  }

  public StorageSpec getStorage() {
    return storage;
  }

  public void setStorage(StorageSpec storage) {
    this.storage = storage;
  }

  public Compression getCompression() {
    return compression;
  }

  public void setCompression(Compression compression) {
    this.compression = compression;
  }

  public EncryptionSpec getEncryption() {
    return encryption;
  }

  public void setEncryption(EncryptionSpec encryption) {
    this.encryption = encryption;
  }

  public DeletionPolicy getDeletionPolicy() {
    return deletionPolicy;
  }

  public void setDeletionPolicy(DeletionPolicy deletionPolicy) {
    this.deletionPolicy = deletionPolicy;
  }

  /** Effective timeout: the field's default also applies to objects created without defaulting. */
  public int effectiveTimeoutSeconds() {
    return timeoutSeconds == null ? 300 : timeoutSeconds;
  }

  public boolean effectiveLeaveRunning() {
    return leaveRunning == null || leaveRunning;
  }

  public boolean effectiveHoldFinalFreeze() {
    return holdFinalFreeze != null && holdFinalFreeze;
  }

  public DeletionPolicy effectiveDeletionPolicy() {
    return deletionPolicy == null ? DeletionPolicy.Retain : deletionPolicy;
  }

  /** Compression of stored image files. */
  public enum Compression {
    none,
    zstd
  }

  /** What happens to the stored images when the Checkpoint is deleted. */
  public enum DeletionPolicy {
    Retain,
    Delete
  }

  /** An object-store location and the Secret holding its credentials. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class StorageSpec {
    @Required
    @Pattern(StoragePolicy.URI_PATTERN)
    @JsonPropertyDescription(
        "Base URI s3://bucket/prefix (endpoint from the Secret); only s3:// is accepted. Without"
            + " credentialsSecretRef only the default store or its prefix for this namespace.")
    private String uri;

    @JsonPropertyDescription(
        "Secret with keys accessKey, secretKey and optionally endpoint; must be in the"
            + " Checkpoint's namespace.")
    private SecretRef credentialsSecretRef;

    public String getUri() {
      return uri;
    }

    public void setUri(String uri) {
      this.uri = uri;
    }

    public SecretRef getCredentialsSecretRef() {
      return credentialsSecretRef;
    }

    public void setCredentialsSecretRef(SecretRef credentialsSecretRef) {
      this.credentialsSecretRef = credentialsSecretRef;
    }
  }

  /** Client-side encryption settings. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class EncryptionSpec {
    @Required
    @JsonPropertyDescription("Secret (same namespace) and key holding the encryption key.")
    private SecretRef keySecretRef;

    public SecretRef getKeySecretRef() {
      return keySecretRef;
    }

    public void setKeySecretRef(SecretRef keySecretRef) {
      this.keySecretRef = keySecretRef;
    }
  }

  /**
   * A reference to a Secret. {@code namespace} exists only so that a cross-namespace reference can
   * be rejected with a precise reason instead of being silently read from the wrong place.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class SecretRef {
    @Required private String name;

    @JsonPropertyDescription("Must be empty or equal to the Checkpoint's namespace.")
    private String namespace;

    @JsonPropertyDescription("Key inside the Secret (for encryption keys).")
    private String key;

    public SecretRef() {}

    public SecretRef(String name, String namespace) {
      this.name = name;
      this.namespace = namespace;
    }

    public String getName() {
      return name;
    }

    public void setName(String name) {
      this.name = name;
    }

    public String getNamespace() {
      return namespace;
    }

    public void setNamespace(String namespace) {
      this.namespace = namespace;
    }

    public String getKey() {
      return key;
    }

    public void setKey(String key) {
      this.key = key;
    }
  }
}
