package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.RestoreStatusAggregator.Step;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class RestoreStagingTest {
  static final Instant T0 = Instant.parse("2026-12-04T10:00:00Z");
  static final Instant T1 = Instant.parse("2026-12-04T10:00:07Z");
  static final String UID = "0b5c7e1a-3f2d-4c8e-9a61-2d4f6b8c0e13";

  static CheckpointSpec.SecretRef ref(String name) {
    return new CheckpointSpec.SecretRef(name, null);
  }

  static CheckpointSpec.EncryptionSpec key(String name) {
    CheckpointSpec.EncryptionSpec e = new CheckpointSpec.EncryptionSpec();
    e.setKeySecretRef(ref(name));
    return e;
  }

  @Test
  void aCheckpointOnTheDefaultStoreWithoutKeyIsFetchedByTheWrapper() {
    RestoreSpec byName = new RestoreSpec();
    byName.setCheckpointName("c");
    CheckpointSpec plain = new CheckpointSpec();
    assertNull(RestoreStaging.why(byName, plain));
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://default/team-a");
    plain.setStorage(st); // the default store's namespace prefix: default credentials
    assertNull(RestoreStaging.why(byName, plain));
    plain.setCompression(CheckpointSpec.Compression.zstd);
    assertNull(RestoreStaging.why(byName, plain), "compression needs no Secret");
  }

  @Test
  void aCheckpointWithItsOwnCredentialsOrKeyIsStaged() {
    RestoreSpec byName = new RestoreSpec();
    byName.setCheckpointName("c");
    CheckpointSpec cs = new CheckpointSpec();
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri("s3://team-bucket/x");
    st.setCredentialsSecretRef(ref("team-creds"));
    cs.setStorage(st);
    assertEquals("the store's credentials Secret team-creds", RestoreStaging.why(byName, cs));
    cs.setEncryption(key("team-key"));
    assertEquals(
        "the store's credentials Secret team-creds and the encryption key Secret team-key",
        RestoreStaging.why(byName, cs));
    cs.setStorage(null);
    assertEquals("the encryption key Secret team-key", RestoreStaging.why(byName, cs));
  }

  @Test
  void aRestoreByUriIsStagedWhenItNamesASecretAndTheCheckpointsSpecIsNotConsulted() {
    RestoreSpec byUri = new RestoreSpec();
    byUri.setUri("s3://default/team-a/c/uid");
    assertNull(RestoreStaging.why(byUri, null));
    byUri.setCredentialsSecretRef(ref("creds"));
    assertEquals("the store's credentials Secret creds", RestoreStaging.why(byUri, null));
    byUri.setCredentialsSecretRef(null);
    byUri.setEncryption(key("k"));
    assertEquals("the encryption key Secret k", RestoreStaging.why(byUri, null));
  }

  @Test
  void annotationFormRoundTripsAndRefusesWhatCouldLeaveTheDirectory() {
    String v = RestoreStaging.annotation(UID, "app");
    assertEquals("staged:" + UID + "/app", v);
    assertTrue(RestoreStaging.isStaged(v));
    assertFalse(RestoreStaging.isStaged("s3://b/x/app"));
    assertFalse(RestoreStaging.isStaged(null));
    RestoreStaging.Ref r = RestoreStaging.Ref.parse(v);
    assertEquals(new RestoreStaging.Ref(UID, "app"), r);
    assertEquals(UID + "/app", r.path());
    for (String bad :
        new String[] {
          "staged:" + UID,
          "staged:../etc/app",
          "staged:" + UID + "/../x",
          "staged:" + UID + "/a/b",
          "staged:" + UID + "/App",
          "staged:/app",
          "s3://b/app"
        }) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> RestoreStaging.Ref.parse(bad), bad);
      assertEquals(1, e.getMessage().lines().count(), e.getMessage());
    }
    assertThrows(IllegalArgumentException.class, () -> RestoreStaging.annotation("x/y", "app"));
  }

  @Test
  void stagedConditionIsTheAgentsAloneAndSurvivesTheOperatorsSteps() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "pod created"), T0);
    s = RestoreStatusAggregator.staged(s, 1, Reason.Staging, "fetching app", T0);
    assertEquals(RestorePhase.Restoring, s.phase, "phase is the operator's");
    assertEquals("pod created", s.message);
    var c = RestoreStatusAggregator.condition(s, RestoreStatusAggregator.STAGED);
    assertEquals("False", c.getStatus());
    assertEquals("Staging", c.getReason());
    assertNull(RestoreStatusAggregator.stageFailure(s));

    s = RestoreStatusAggregator.staged(s, 1, Reason.Staged, "app staged on n1", T1);
    c = RestoreStatusAggregator.condition(s, RestoreStatusAggregator.STAGED);
    assertEquals("True", c.getStatus());
    assertEquals("2026-12-04T10:00:07Z", c.getLastTransitionTime());

    // the operator's next step keeps it
    s =
        RestoreStatusAggregator.next(
            s, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "scheduled"), T1);
    assertEquals("Staged", RestoreStatusAggregator.condition(s, "Staged").getReason());

    RestoreStatus failed =
        RestoreStatusAggregator.staged(
            s, 1, Reason.StageFailed, "storage secret ns/x not found", T1);
    assertEquals("storage secret ns/x not found", RestoreStatusAggregator.stageFailure(failed));
    assertEquals("False", RestoreStatusAggregator.condition(failed, "Staged").getStatus());

    RestoreStatus done =
        RestoreStatusAggregator.next(s, 1, Step.failed(Reason.TimedOut, "late"), T1);
    assertSame(
        done, RestoreStatusAggregator.staged(done, 1, Reason.StageFailed, "x", T1), "terminal");
    assertThrows(
        IllegalArgumentException.class,
        () -> RestoreStatusAggregator.staged(done, 1, Reason.Completed, "x", T1));
  }
}
