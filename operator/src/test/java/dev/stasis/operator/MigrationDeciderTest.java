package dev.stasis.operator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Migration;
import dev.stasis.crds.MigrationPhase;
import dev.stasis.crds.MigrationSpec;
import dev.stasis.crds.MigrationStatusAggregator;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Migration's pre-copy decisions (MIGPRE.md steps 1, 3, 5), without a server. */
class MigrationDeciderTest {
  static final Instant NOW = Instant.parse("2026-12-04T05:00:00Z");
  final MigrationDecider decider = new MigrationDecider(Duration.ofSeconds(2));
  final Pod source = Fixtures.runningPod("ns", "web", "n1", "app", "containerd://a");

  Migration migration(Boolean preCopy, MigrationPhase phase) {
    Migration m = new Migration();
    m.setMetadata(
        new ObjectMetaBuilder()
            .withNamespace("ns")
            .withName("m1")
            .withUid("mig-uid")
            .withGeneration(1L)
            .build());
    MigrationSpec s = new MigrationSpec();
    s.setPodName("web");
    s.setTargetNode("n2");
    s.setPreCopy(preCopy);
    m.setSpec(s);
    if (phase != MigrationPhase.Pending) {
      m.setStatus(
          MigrationStatusAggregator.next(
              null,
              1,
              MigrationStatusAggregator.Step.to(phase, Reason.Checkpointing, phase.name())
                  .source("n1", source.getMetadata().getUid()),
              NOW.minusSeconds(5)));
    }
    return m;
  }

  /** The migration's Checkpoint, as the source agent left it after {@code t} (null: new). */
  Checkpoint checkpoint(Migration m, Transition t) {
    Checkpoint c = MigrationDecider.checkpointFor(m);
    c.getMetadata().setUid("ckpt-uid");
    if (t != null) {
      c.setStatus(StatusAggregator.next(null, 1, t, NOW));
    }
    return c;
  }

  static Transition parentStored() {
    return Transition.to(Phase.Running, Reason.ParentStored, "parents")
        .parentStored(NOW.toString(), 1 << 20);
  }

  Restore restore(Migration m, Reason parentStaged) {
    Restore r = MigrationDecider.restoreFor(m);
    r.getMetadata().setUid("rst-uid");
    r.setStatus(
        RestoreStatusAggregator.next(
            null,
            1,
            RestoreStatusAggregator.Step.to(RestorePhase.Pending, Reason.PreStaging, "held")
                .node("n2"),
            NOW));
    if (parentStaged != null) {
      r.setStatus(RestoreStatusAggregator.parentStaged(r.getStatus(), 1, parentStaged, "why", NOW));
    }
    return r;
  }

  MigrationDecider.Decision decide(Migration m, Checkpoint c, Restore r, Instant now) {
    return decider.decide(new MigrationDecider.Observed(m, source, n -> true, null, c, r, now));
  }

  @Test
  void preCopyIsTheDefaultAndHoldsTheFinalFreeze() {
    assertTrue(
        MigrationDecider.checkpointFor(migration(null, MigrationPhase.Pending))
            .getSpec()
            .effectiveHoldFinalFreeze());
    Checkpoint today = MigrationDecider.checkpointFor(migration(false, MigrationPhase.Pending));
    assertFalse(today.getSpec().effectiveHoldFinalFreeze(), "preCopy false: today's checkpoint");
    assertTrue(today.getSpec().effectiveLeaveRunning());
  }

  @Test
  void theRestoreIsMadeOnParentStoredNotBefore() {
    Migration m = migration(true, MigrationPhase.Checkpointing);
    MigrationDecider.Decision d = decide(m, checkpoint(m, null), null, NOW);
    assertNull(d.step());
    assertNull(d.createRestore(), "nothing stored yet");
    d = decide(m, checkpoint(m, parentStored()), null, NOW);
    assertEquals(MigrationPhase.PreStaging, d.step().phase());
    assertEquals("n2", d.createRestore().getSpec().getNodeName());
    assertFalse(d.finalFreezeGo());
    assertFalse(d.deleteCopy());
  }

  @Test
  void parentStagedGivesTheGoAndRecordsWhen() {
    Migration m = migration(true, MigrationPhase.PreStaging);
    Checkpoint c = checkpoint(m, parentStored());
    MigrationDecider.Decision d = decide(m, c, restore(m, null), NOW);
    assertNull(d.step(), "waits for the target");
    assertFalse(d.finalFreezeGo());
    d = decide(m, c, restore(m, Reason.ParentStaged), NOW);
    assertEquals(MigrationPhase.Restoring, d.step().phase());
    assertTrue(d.finalFreezeGo());
    assertNull(d.createRestore(), "exists");
    var st = MigrationStatusAggregator.next(m.getStatus(), 1, d.step(), NOW);
    assertNotNull(st.parentStagedAt);
    assertNull(st.frozenAt, "the final cut is still to come");
  }

  @Test
  void inRestoringALostGoIsWrittenAgainAndTheFinalCutsFreezeIsRecorded() {
    Migration m = migration(true, MigrationPhase.Restoring);
    Checkpoint c = checkpoint(m, parentStored());
    Restore r = restore(m, Reason.ParentStaged);
    MigrationDecider.Decision d = decide(m, c, r, NOW);
    assertTrue(d.finalFreezeGo(), "annotation missing: written again");
    c.getMetadata().setAnnotations(Map.of(Labels.FINAL_FREEZE, Labels.FINAL_FREEZE_GO));
    assertFalse(decide(m, c, r, NOW).finalFreezeGo());
    c.setStatus(
        StatusAggregator.next(
            c.getStatus(),
            1,
            Transition.to(Phase.Completed, Reason.Completed, "stored").frozenAt(NOW),
            NOW));
    d = decide(m, c, r, NOW);
    assertEquals(MigrationPhase.Restoring, d.step().phase());
    assertEquals(
        c.getStatus().frozenAt,
        MigrationStatusAggregator.next(m.getStatus(), 1, d.step(), NOW).frozenAt);
    assertFalse(d.finalFreezeGo(), "completed: nothing held");
  }

  @Test
  void aFailedPreStageOrTimeoutRollsBackAndReleasesTheHeldCheckpoint() {
    Migration m = migration(true, MigrationPhase.PreStaging);
    Checkpoint c = checkpoint(m, parentStored());
    MigrationDecider.Decision d = decide(m, c, restore(m, Reason.StageFailed), NOW);
    assertEquals(MigrationPhase.Failed, d.step().phase());
    assertEquals(Reason.StageFailed, d.step().reason());
    assertTrue(d.step().message().contains("why"), d.step().message());
    assertTrue(d.deleteCopy());
    assertTrue(d.releaseCheckpoint(), "the held checkpoint is deleted: the source is released");
    assertFalse(d.finalFreezeGo());

    d = decide(m, c, restore(m, null), NOW.plusSeconds(3600));
    assertEquals(Reason.TimedOut, d.step().reason());
    assertTrue(d.releaseCheckpoint());

    // a checkpoint that already ended holds nothing: it is left alone
    c.setStatus(
        StatusAggregator.next(
            c.getStatus(), 1, Transition.failed(Reason.DumpFailed, "fd 3: a tty"), NOW));
    d = decide(m, c, restore(m, null), NOW);
    assertEquals(Reason.CheckpointFailed, d.step().reason());
    assertFalse(d.releaseCheckpoint());
  }

  @Test
  void withoutPreCopyTheFlowIsTodays() {
    Migration m = migration(false, MigrationPhase.Checkpointing);
    Checkpoint c = checkpoint(m, null);
    assertNull(decide(m, c, null, NOW).createRestore());
    c.setStatus(
        StatusAggregator.next(
            null, 1, Transition.to(Phase.Completed, Reason.Completed, "s").frozenAt(NOW), NOW));
    MigrationDecider.Decision d = decide(m, c, null, NOW);
    assertEquals(MigrationPhase.Restoring, d.step().phase());
    assertNotNull(d.createRestore());
    assertFalse(d.finalFreezeGo());
    assertEquals(
        c.getStatus().frozenAt,
        MigrationStatusAggregator.next(m.getStatus(), 1, d.step(), NOW).frozenAt);
    d = decide(m, c, null, NOW.plusSeconds(3600));
    assertFalse(d.releaseCheckpoint(), "nothing held");
  }
}
