package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Labels;
import dev.stasis.crds.StoragePolicy;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.EncryptionKey;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.StorageException;
import dev.stasis.storage.StoreOptions;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Where a Checkpoint's images go: {@code <base>/<namespace>/<name>/<uid>/<container>}, base being
 * spec.storage.uri or the agent's default store. Credentials come from the Secret named in the spec
 * (keys accessKey, secretKey, optional endpoint and region), always read from the Checkpoint's own
 * namespace, or else from the agent's environment.
 */
final class StoreResolver {
  private final KubernetesClient client;
  private final String defaultUri;
  private final Map<String, String> env;

  StoreResolver(KubernetesClient client, String defaultUri, Map<String, String> env) {
    this.client = client;
    this.defaultUri = defaultUri;
    this.env = env;
  }

  /** The checkpoint's location (what status.location says). */
  String location(Checkpoint cr) throws StorageException {
    CheckpointSpec.StorageSpec s = cr.getSpec().getStorage();
    String base = s != null ? s.getUri() : defaultUri;
    if (base == null || base.isBlank()) {
      throw new StorageException(
          "no store: spec.storage is not set and the agent has no --default-storage");
    }
    return trim(base) + "/" + Labels.storeKey(cr);
  }

  /**
   * The admin's allow-list (env STASIS_ALLOWED_STORAGE_URIS, comma-separated, from the chart's
   * storage.allowedUris); empty: any s3:// store.
   */
  private List<String> allowed() {
    String a = env.get("STASIS_ALLOWED_STORAGE_URIS");
    if (a == null || a.isBlank()) {
      return List.of();
    }
    return Arrays.stream(a.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
  }

  /**
   * Checked here again although the operator and the CRD schema check it too: the agent is
   * privileged, and neither a server without the schema nor an edited Checkpoint may make it write
   * a tenant's memory to the node's disk or another tenant's store with the default credentials.
   */
  void checkAllowed(Checkpoint cr) throws StorageException {
    String v =
        StoragePolicy.violation(
            cr.getMetadata().getNamespace(),
            cr.getSpec().getStorage(),
            Optional.ofNullable(defaultUri).filter(d -> !d.isBlank()),
            allowed());
    if (v != null) {
      throw new StorageException(v);
    }
  }

  /**
   * A Restore's {@code spec.uri} (issue 14): the rules of {@link #checkAllowed} and, without a
   * Secret, only the namespace's own prefix of the default store, checked here again before the
   * agent stages it (the operator refuses such a Restore first).
   */
  void checkRestoreUri(String namespace, String uri, CheckpointSpec.SecretRef credentials)
      throws StorageException {
    String v =
        StoragePolicy.restoreViolation(
            namespace,
            uri,
            credentials,
            Optional.ofNullable(defaultUri).filter(d -> !d.isBlank()),
            allowed());
    if (v != null) {
      throw new StorageException(v);
    }
  }

  CheckpointStore open(Checkpoint cr, String container) throws StorageException {
    checkAllowed(cr);
    String uri = location(cr) + "/" + container;
    StoreOptions o = StoreOptions.defaults();
    String spool = env.get("STASIS_SPOOL_DIR");
    if (spool != null && !spool.isBlank()) {
      // leave-running checkpoints: pages to node-local scratch first when it has room (shorter
      // freeze), see CheckpointWriter
      o = o.withSpool(java.nio.file.Path.of(spool), quantity(env.get("STASIS_SPOOL_LIMIT")));
    }
    CheckpointSpec spec = cr.getSpec();
    String ns = cr.getMetadata().getNamespace();
    o =
        withSecrets(
            o,
            ns,
            uri,
            spec.getStorage() == null ? null : spec.getStorage().getCredentialsSecretRef(),
            spec.getEncryption());
    if (spec.getCompression() == CheckpointSpec.Compression.zstd) {
      o = o.withCompression("zstd", 3);
    }
    return CheckpointStore.open(uri, o);
  }

  /**
   * A restore source to fetch from (the node agent stages what the runtime wrapper cannot fetch
   * with the node's defaults): the same rules as for a checkpoint's store, checked again here on
   * the privileged side: {@code storage} (the Checkpoint's spec.storage, or a Restore's uri and
   * credentials) must pass {@link StoragePolicy} for {@code namespace} (s3:// only, the admin's
   * allow-list, default credentials only for the default store); Secrets only from {@code
   * namespace}. Compression is read from the stored manifest.
   */
  CheckpointStore openSource(
      String namespace,
      String uri,
      CheckpointSpec.StorageSpec storage,
      CheckpointSpec.EncryptionSpec encryption)
      throws StorageException {
    String v =
        StoragePolicy.violation(
            namespace,
            storage,
            Optional.ofNullable(defaultUri).filter(d -> !d.isBlank()),
            allowed());
    if (v != null) {
      throw new StorageException(v);
    }
    if (storage == null) {
      // a Checkpoint in the default store: below <default>/<namespace>, as location() puts it
      String def = defaultUri == null ? "" : trim(defaultUri) + "/" + namespace;
      if (defaultUri == null || defaultUri.isBlank() || !uri.startsWith(def + "/")) {
        throw new StorageException(
            uri
                + " is not in the default store's prefix for namespace "
                + namespace
                + ", and no store credentials were named for it");
      }
    } else if (!(trim(uri).equals(trim(storage.getUri()))
        || uri.startsWith(trim(storage.getUri()) + "/"))) {
      throw new StorageException(uri + " is not under " + storage.getUri());
    }
    StoreOptions o =
        withSecrets(
            StoreOptions.defaults(),
            namespace,
            uri,
            storage == null ? null : storage.getCredentialsSecretRef(),
            encryption);
    return CheckpointStore.open(uri, o);
  }

  private StoreOptions withSecrets(
      StoreOptions o,
      String ns,
      String uri,
      CheckpointSpec.SecretRef creds,
      CheckpointSpec.EncryptionSpec encryption)
      throws StorageException {
    if (uri.startsWith("s3://")) {
      if (creds != null) {
        Map<String, String> d = secret(ns, creds, "storage");
        String ak = d.get("accessKey");
        String sk = d.get("secretKey");
        if (ak == null || sk == null) {
          throw new StorageException(
              "storage secret " + creds.getName() + " needs the keys accessKey and secretKey");
        }
        o =
            o.withS3(
                new S3Config(
                    d.get("endpoint"),
                    d.getOrDefault("region", "us-east-1"),
                    false,
                    null,
                    ak,
                    sk,
                    4,
                    250));
      } else {
        o = o.withS3(S3Config.fromEnvironment(null, null, false, null, env));
      }
    }
    if (encryption != null) {
      CheckpointSpec.SecretRef ref = encryption.getKeySecretRef();
      String key = ref.getKey() == null ? "key" : ref.getKey();
      String text = secret(ns, ref, "encryption key").get(key);
      if (text == null) {
        throw new StorageException(
            "encryption key secret " + ref.getName() + " has no key '" + key + "'");
      }
      o = o.withEncryption(EncryptionKey.parse(text, "secret " + ref.getName() + "/" + key));
    }
    return o;
  }

  private Map<String, String> secret(String ns, CheckpointSpec.SecretRef ref, String what)
      throws StorageException {
    if (ref.getNamespace() != null
        && !ref.getNamespace().isEmpty()
        && !ref.getNamespace().equals(ns)) {
      // Never read another namespace's Secret on a user's behalf, even though the agent could.
      throw new StorageException(what + " secret must be in namespace " + ns);
    }
    Secret s = client.secrets().inNamespace(ns).withName(ref.getName()).get();
    if (s == null) {
      throw new StorageException(what + " secret " + ns + "/" + ref.getName() + " not found");
    }
    Map<String, String> out = new java.util.HashMap<>();
    if (s.getData() != null) {
      s.getData()
          .forEach(
              (k, v) ->
                  out.put(
                      k, new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8).trim()));
    }
    if (s.getStringData() != null) {
      s.getStringData().forEach((k, v) -> out.put(k, v.trim()));
    }
    return out;
  }

  /**
   * A Kubernetes quantity as the chart passes the spool's emptyDir sizeLimit ("8Gi", "500M",
   * "1073741824"); null, blank or "0": no limit (0).
   */
  static long quantity(String q) {
    if (q == null || q.isBlank()) {
      return 0;
    }
    String t = q.trim();
    String[][] units = {
      {"Ki", "1024"}, {"Mi", "1048576"}, {"Gi", "1073741824"}, {"Ti", "1099511627776"},
      {"k", "1000"}, {"M", "1000000"}, {"G", "1000000000"}, {"T", "1000000000000"}
    };
    for (String[] u : units) {
      if (t.endsWith(u[0])) {
        return Long.parseLong(t.substring(0, t.length() - u[0].length()).trim())
            * Long.parseLong(u[1]);
      }
    }
    try {
      return Long.parseLong(t);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "STASIS_SPOOL_LIMIT '" + q + "' is not a size such as 8Gi, 500Mi or 1073741824", e);
    }
  }

  private static String trim(String s) {
    String t = s.trim();
    while (t.endsWith("/")) {
      t = t.substring(0, t.length() - 1);
    }
    return t;
  }
}
