package dev.stasis.crds;

import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Where a Checkpoint may send a tenant's memory, checked alike by the CRD schema (scheme), the
 * operator (before dispatch) and the privileged agent (before it opens a store), so that neither a
 * server without the schema nor a forged status can aim the agent elsewhere:
 *
 * <ul>
 *   <li>{@code spec.storage.uri} is an {@code s3://bucket[/prefix]} URI: never {@code file://},
 *       which would let the agent write anywhere on the node (it runs privileged);
 *   <li>when the admin set an allow-list (chart {@code storage.allowedUris}), it must lie under one
 *       of its entries;
 *   <li>without a credentials Secret the platform's default credentials would be used: then the URI
 *       must be the default store or its prefix for the Checkpoint's namespace ({@code
 *       <default>/<namespace>}), never another bucket or another namespace's prefix.
 * </ul>
 */
public final class StoragePolicy {
  /** What the CRD schema enforces on spec.storage.uri (see {@link CheckpointSpec.StorageSpec}). */
  public static final String URI_PATTERN = "^s3://[a-z0-9][a-z0-9.-]{0,62}(/[^?#]*)?$";

  private StoragePolicy() {}

  /**
   * Null when {@code storage} may be used by a Checkpoint in {@code namespace}, else a one-line
   * reason. {@code storage} null (the default store) is always allowed.
   */
  public static String violation(
      String namespace,
      CheckpointSpec.StorageSpec storage,
      Optional<String> defaultUri,
      List<String> allowed) {
    if (storage == null) {
      return null;
    }
    String uri = storage.getUri() == null ? "" : storage.getUri().trim();
    if (!uri.matches(URI_PATTERN)) {
      return "spec.storage.uri '"
          + uri
          + "' is not an s3://bucket/prefix URI; checkpoints of a cluster go to object storage"
          + " only";
    }
    for (String segment : uri.substring(5).split("/")) {
      if (segment.equals("..") || segment.equals(".")) {
        return "spec.storage.uri '" + uri + "' has a '" + segment + "' segment";
      }
    }
    String u = trim(uri);
    if (!allowed.isEmpty() && allowed.stream().noneMatch(a -> under(u, trim(a)))) {
      return "spec.storage.uri '"
          + uri
          + "' is not under a store the cluster allows ("
          + String.join(", ", allowed)
          + ")";
    }
    if (storage.getCredentialsSecretRef() == null) {
      String def = defaultUri.map(StoragePolicy::trim).orElse(null);
      if (def == null || !(u.equals(def) || under(u, def + "/" + namespace))) {
        return "spec.storage.uri '"
            + uri
            + "' names no credentialsSecretRef: the platform's default credentials are used only"
            + " for the default store"
            + (def == null ? "" : " (" + def + " or " + def + "/" + namespace + "/...)")
            + "; name a Secret with this store's credentials";
      }
    }
    return null;
  }

  /**
   * Null when a Restore in {@code namespace} may read {@code uri} (its {@code spec.uri}), else a
   * one-line reason. The Checkpoints' rules, and one more: without a Secret the runtime wrapper
   * reads exactly {@code uri} with the node's default credentials, so it must lie inside the
   * namespace's own prefix ({@code <default>/<namespace>/...}); the default store's root, which a
   * Checkpoint may name because the agent then writes below the namespace's prefix, is refused.
   */
  public static String restoreViolation(
      String namespace,
      String uri,
      CheckpointSpec.SecretRef credentials,
      Optional<String> defaultUri,
      List<String> allowed) {
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri(uri);
    st.setCredentialsSecretRef(credentials);
    String v = violation(namespace, st, defaultUri, allowed);
    if (v != null) {
      return v.replace("spec.storage.uri", "spec.uri");
    }
    String def = defaultUri.map(StoragePolicy::trim).orElse("");
    if (credentials == null && !under(trim(uri), def + "/" + namespace)) {
      return "spec.uri '"
          + uri
          + "' names no credentialsSecretRef: the platform's default credentials read only the"
          + " namespace's prefix of the default store ("
          + def
          + "/"
          + namespace
          + "/...); name a Secret with this store's credentials";
    }
    return null;
  }

  /** {@code uri} equals {@code base} or lies below it (whole path segments). */
  static boolean under(String uri, String base) {
    return uri.equals(base) || uri.startsWith(base + "/");
  }

  static String trim(String s) {
    String t = s.trim();
    while (t.endsWith("/")) {
      t = t.substring(0, t.length() - 1);
    }
    return t.toLowerCase(Locale.ROOT).startsWith("s3://") ? "s3://" + t.substring(5) : t;
  }
}
