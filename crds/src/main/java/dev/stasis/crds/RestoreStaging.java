package dev.stasis.crds;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Which restore sources the node agent stages, and the annotation form that tells the runtime
 * wrapper so. Pure; shared by the operator (writes the annotations), the node agent (stages what
 * they name) and, by its documented form, the wrapper {@code stasis-runc}.
 *
 * <p>The wrapper runs inside containerd or CRI-O with no Kubernetes access: it can fetch only with
 * the node's default store credentials and key ({@code /etc/stasis/runtime.env}). A source that
 * needs anything else (a credentials Secret of the Restore or of the Checkpoint's storage, an
 * encryption key Secret) is fetched and verified by the node agent, which reads the namespace's
 * Secrets under the same rules as for checkpoints, into {@code <staging dir>/<restore
 * uid>/<container>}; the pod then carries
 *
 * <pre>
 * restore-from.stasis.dev/&lt;container&gt;: staged:&lt;restore uid&gt;/&lt;container&gt;
 * </pre>
 *
 * instead of a store location, and the wrapper restores from that directory, never fetching.
 */
public final class RestoreStaging {
  /** Value prefix of a staged {@code restore-from.stasis.dev/<container>} annotation. */
  public static final String PREFIX = "staged:";

  /** Node directory the agent stages into and the wrapper reads (its STASIS_STAGED_DIR). */
  public static final String DEFAULT_DIR = "/var/lib/stasis/restore/staged";

  /**
   * Words of the wrapper's one line when the staged images are not there yet within its wait:
   * create failed, but the kubelet retries it, so the operator must not fail the Restore on such a
   * CreateContainerError (the Restore's timeoutSeconds still bounds the whole).
   */
  public static final String NOT_READY = "not staged on this node yet";

  /** A file beside the staged directories, {@code <container>.failed}: the agent's one line. */
  public static final String FAILED_SUFFIX = ".failed";

  /** Kubernetes uids and container names (DNS labels): nothing that could leave the directory. */
  private static final Pattern UID = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");

  private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?");

  private RestoreStaging() {}

  /**
   * Why the node agent must stage this source, or null when the wrapper can fetch it with the
   * node's defaults. {@code checkpoint}: the spec of the Checkpoint a Restore by name restores from
   * (null for a Restore by uri).
   */
  public static String why(RestoreSpec restore, CheckpointSpec checkpoint) {
    List<String> needs = new ArrayList<>();
    CheckpointSpec.SecretRef creds;
    CheckpointSpec.EncryptionSpec enc;
    if (checkpoint != null) {
      creds =
          checkpoint.getStorage() == null
              ? null
              : checkpoint.getStorage().getCredentialsSecretRef();
      enc = checkpoint.getEncryption();
    } else {
      creds = restore.getCredentialsSecretRef();
      enc = restore.getEncryption();
    }
    if (creds != null) {
      needs.add("the store's credentials Secret " + creds.getName());
    }
    if (enc != null && enc.getKeySecretRef() != null) {
      needs.add("the encryption key Secret " + enc.getKeySecretRef().getName());
    }
    return needs.isEmpty() ? null : String.join(" and ", needs);
  }

  /** The annotation value naming a staged container's images. */
  public static String annotation(String restoreUid, String container) {
    Ref r = new Ref(restoreUid, container);
    return PREFIX + r.restoreUid() + "/" + r.container();
  }

  /** True when {@code uid} can name a Restore's staging directory (what {@link Ref} accepts). */
  public static boolean isRestoreUid(String uid) {
    return uid != null && UID.matcher(uid).matches();
  }

  /** True when a {@code restore-from.stasis.dev/<c>} value names staged images. */
  public static boolean isStaged(String value) {
    return value != null && value.startsWith(PREFIX);
  }

  /** The staged images of one container of one Restore: a path below the staging directory. */
  public record Ref(String restoreUid, String container) {
    public Ref {
      if (!isRestoreUid(restoreUid)) {
        throw new IllegalArgumentException("'" + restoreUid + "' is not a Restore uid");
      }
      if (container == null || !NAME.matcher(container).matches()) {
        throw new IllegalArgumentException("'" + container + "' is not a container name");
      }
    }

    /** Parses {@code staged:<uid>/<container>}; one-line IllegalArgumentException otherwise. */
    public static Ref parse(String value) {
      if (!isStaged(value)) {
        throw new IllegalArgumentException("'" + value + "' does not start with " + PREFIX);
      }
      String rest = value.substring(PREFIX.length());
      int slash = rest.indexOf('/');
      if (slash < 0) {
        throw new IllegalArgumentException(
            "'" + value + "' is not " + PREFIX + "<restore uid>/<container>");
      }
      return new Ref(rest.substring(0, slash), rest.substring(slash + 1));
    }

    /** Relative path below the staging directory. */
    public String path() {
      return restoreUid + "/" + container;
    }
  }
}
