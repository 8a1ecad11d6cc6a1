package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.storage.StorageException;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The privileged agent's own check of spec.storage (issue 14): it holds even when the operator and
 * the CRD schema were bypassed, and it runs before any Secret is read or any store opened.
 */
class StoreResolverTest {
  static Checkpoint cr(String ns, String uri, String secret) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withNamespace(ns).withName("c").withUid("u1").build());
    CheckpointSpec spec = new CheckpointSpec();
    spec.setPodName("web");
    if (uri != null) {
      CheckpointSpec.StorageSpec s = new CheckpointSpec.StorageSpec();
      s.setUri(uri);
      if (secret != null) {
        s.setCredentialsSecretRef(new CheckpointSpec.SecretRef(secret, null));
      }
      spec.setStorage(s);
    }
    c.setSpec(spec);
    return c;
  }

  // No Kubernetes client: every refusal below happens before the agent would read a Secret.
  final StoreResolver stores = new StoreResolver(null, "s3://platform/ckpt", Map.of());

  String refused(Checkpoint c) {
    return assertThrows(StorageException.class, () -> stores.open(c, "app")).getMessage();
  }

  @Test
  void fileUrisNeverReachTheNodesDisk() {
    String m = refused(cr("team-a", "file:///proc/self/root/etc", "creds"));
    assertTrue(m.contains("not an s3://bucket/prefix URI"), m);
    assertTrue(refused(cr("team-a", "/var/lib/x", "creds")).contains("s3://"));
    assertTrue(refused(cr("team-a", "s3://bucket/a/../b", "creds")).contains("'..'"));
  }

  @Test
  void defaultCredentialsOnlyForTheDefaultStoreAndTheNamespacesPrefix() {
    String m = refused(cr("team-a", "s3://attacker-bucket/x", null));
    assertTrue(m.contains("default credentials are used only for the default store"), m);
    assertTrue(refused(cr("team-a", "s3://platform/ckpt/team-b", null)).contains("default"));
    assertTrue(refused(cr("team-a", "s3://platform/other", null)).contains("default"));
    assertDoesNotThrow(() -> stores.checkAllowed(cr("team-a", "s3://platform/ckpt", null)));
    assertDoesNotThrow(
        () -> stores.checkAllowed(cr("team-a", "s3://platform/ckpt/team-a/x", null)));
    assertDoesNotThrow(() -> stores.checkAllowed(cr("team-a", null, null)), "default store");
    assertDoesNotThrow(
        () -> stores.checkAllowed(cr("team-a", "s3://own-bucket/x", "creds")),
        "any s3 store with the tenant's own Secret when no allow-list is set");
  }

  @Test
  void theAdminsAllowListIsEnforcedByTheAgentToo() {
    StoreResolver listed =
        new StoreResolver(
            null,
            "s3://platform/ckpt",
            Map.of("STASIS_ALLOWED_STORAGE_URIS", "s3://platform/ckpt, s3://approved/"));
    String m =
        assertThrows(
                StorageException.class,
                () -> listed.checkAllowed(cr("team-a", "s3://own-bucket/x", "creds")))
            .getMessage();
    assertTrue(m.contains("not under a store the cluster allows"), m);
    assertDoesNotThrow(() -> listed.checkAllowed(cr("team-a", "s3://approved/team-a", "creds")));
    assertThrows(
        StorageException.class,
        () -> listed.checkAllowed(cr("team-a", "s3://approved-not/x", "creds")),
        "prefixes match whole path segments");
  }

  /**
   * A Restore by uri: without a Secret only inside the namespace's own prefix of the default store
   * (not even its root, which the wrapper would read as it is), s3:// only, inside the allow-list.
   */
  @Test
  void aRestoresUriWithoutASecretIsOnlyTheNamespacesOwnPrefix() {
    String m =
        assertThrows(
                StorageException.class,
                () -> stores.checkRestoreUri("team-a", "s3://platform/ckpt/team-b/c/u", null))
            .getMessage();
    assertTrue(m.contains("spec.uri 's3://platform/ckpt/team-b/c/u'"), m);
    assertTrue(m.contains("default credentials"), m);
    m =
        assertThrows(
                StorageException.class,
                () -> stores.checkRestoreUri("team-a", "s3://platform/ckpt", null))
            .getMessage();
    assertTrue(m.contains("s3://platform/ckpt/team-a/..."), m);
    assertThrows(
        StorageException.class,
        () ->
            stores.checkRestoreUri(
                "team-a", "file:///proc/self/root/x", new CheckpointSpec.SecretRef("c", null)));
    assertDoesNotThrow(
        () -> stores.checkRestoreUri("team-a", "s3://platform/ckpt/team-a/c/u", null));
    assertDoesNotThrow(
        () ->
            stores.checkRestoreUri(
                "team-a", "s3://own-bucket/x", new CheckpointSpec.SecretRef("c", null)));
  }

  /**
   * Issue 14: the agent reads a Secret only in the namespace of the Checkpoint naming it, even when
   * the operator was bypassed (no client here: the refusal comes before any read).
   */
  @Test
  void secretsOfAnotherNamespaceAreNeverRead() {
    Checkpoint c = cr("team-a", "s3://own-bucket/x", null);
    c.getSpec().getStorage().setCredentialsSecretRef(new CheckpointSpec.SecretRef("s3", "team-b"));
    assertTrue(refused(c).contains("storage secret must be in namespace team-a"), refused(c));
    Checkpoint k = cr("team-a", null, null);
    CheckpointSpec.EncryptionSpec enc = new CheckpointSpec.EncryptionSpec();
    enc.setKeySecretRef(new CheckpointSpec.SecretRef("key", "team-b"));
    k.getSpec().setEncryption(enc);
    StoreResolver withDefaults =
        new StoreResolver(
            null,
            "s3://platform/ckpt",
            Map.of("AWS_ACCESS_KEY_ID", "platform", "AWS_SECRET_ACCESS_KEY", "secret"));
    String m = assertThrows(StorageException.class, () -> withDefaults.open(k, "app")).getMessage();
    assertTrue(m.contains("encryption key secret must be in namespace team-a"), m);
  }

  @Test
  void spoolLimitIsTheChartsEmptyDirSizeLimit() {
    org.junit.jupiter.api.Assertions.assertEquals(8L << 30, StoreResolver.quantity("8Gi"));
    org.junit.jupiter.api.Assertions.assertEquals(500_000_000L, StoreResolver.quantity("500M"));
    org.junit.jupiter.api.Assertions.assertEquals(4096L, StoreResolver.quantity("4096"));
    org.junit.jupiter.api.Assertions.assertEquals(0L, StoreResolver.quantity(null));
    String m =
        assertThrows(IllegalArgumentException.class, () -> StoreResolver.quantity("lots"))
            .getMessage();
    assertTrue(m.contains("STASIS_SPOOL_LIMIT 'lots'"), m);
  }
}
