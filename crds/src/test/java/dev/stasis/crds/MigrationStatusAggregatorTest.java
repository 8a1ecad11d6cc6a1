package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.stasis.crds.MigrationStatusAggregator.Step;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class MigrationStatusAggregatorTest {
  static final Instant T0 = Instant.parse("2026-12-03T10:00:00Z");
  static final Instant T1 = Instant.parse("2026-12-03T10:00:02Z");
  static final Instant T2 = Instant.parse("2026-12-03T10:00:05.750Z");
  static final Instant T3 = Instant.parse("2026-12-03T10:00:06Z");

  static String status(MigrationStatus s, String type) {
    return MigrationStatusAggregator.condition(s, type).getStatus();
  }

  static String reason(MigrationStatus s, String type) {
    return MigrationStatusAggregator.condition(s, type).getReason();
  }

  @Test
  void everyPhaseInOrderWithDowntimeFromFreezeToCopyReady() {
    MigrationStatus s =
        MigrationStatusAggregator.next(
            null,
            1,
            Step.to(MigrationPhase.Checkpointing, Reason.Checkpointing, "checkpoint web-m")
                .source("n1", "uid-1")
                .checkpoint("web-m"),
            T0);
    assertEquals("True", status(s, "Accepted"));
    assertEquals("True", status(s, "SourceRunning"));
    assertEquals("2026-12-03T10:00:00Z", s.startTime);
    s =
        MigrationStatusAggregator.next(
            s,
            1,
            Step.to(MigrationPhase.Restoring, Reason.Restoring, "restore on n2")
                .restore("web-m", "web-copy")
                .frozenAt("2026-12-03T10:00:00.500Z"),
            T1);
    assertNull(s.downtimeMillis, "not known before the copy is Ready");
    assertEquals("web-m", s.checkpointName, "kept");
    s =
        MigrationStatusAggregator.next(
            s,
            1,
            Step.to(MigrationPhase.DeletingSource, Reason.DeletingSource, "copy Ready")
                .copyReadyAt(T2),
            T2);
    assertEquals(5250L, s.downtimeMillis);
    assertEquals("True", status(s, "SourceRunning"), "the source still exists until deleted");
    s =
        MigrationStatusAggregator.next(
            s, 1, Step.to(MigrationPhase.Completed, Reason.Migrated, "migrated"), T3);
    assertEquals("True", status(s, "Ready"));
    assertEquals("False", status(s, "SourceRunning"));
    assertEquals("SourceDeleted", reason(s, "SourceRunning"));
    assertEquals(5250L, s.downtimeMillis);
    assertEquals("n1", s.sourceNode);
    assertEquals("web-copy", s.targetPodName);
    assertEquals("2026-12-03T10:00:06Z", s.completionTime);
    assertEquals(4, s.conditions.size());
  }

  @Test
  void failureLeavesTheSourceRunningUnlessItWentAwayItself() {
    MigrationStatus s =
        MigrationStatusAggregator.next(
            null, 1, Step.to(MigrationPhase.Checkpointing, Reason.Checkpointing, "c"), T0);
    MigrationStatus failed =
        MigrationStatusAggregator.next(
            s, 1, Step.failed(Reason.RestoreFailed, "copy crashed: exit 1"), T1);
    assertEquals("True", status(failed, "SourceRunning"));
    assertEquals("SourceLeftRunning", reason(failed, "SourceRunning"));
    assertEquals("True", status(failed, "Accepted"));
    assertEquals("RestoreFailed", reason(failed, "Failed"));
    MigrationStatus gone =
        MigrationStatusAggregator.next(
            s, 1, Step.failed(Reason.SourceChanged, "pod ns/web was deleted"), T1);
    assertEquals("False", status(gone, "SourceRunning"));
    assertEquals("SourceChanged", reason(gone, "SourceRunning"));
    assertSame(
        gone,
        MigrationStatusAggregator.next(
            gone, 1, Step.to(MigrationPhase.Completed, Reason.Migrated, "late"), T2));
  }

  @Test
  void invalidRequestIsNotAcceptedAndNothingStarted() {
    MigrationStatus s =
        MigrationStatusAggregator.next(
            null, 2, Step.failed(Reason.NodeNotFound, "node n9 not found"), T0);
    assertEquals("False", status(s, "Accepted"));
    assertEquals("NodeNotFound", reason(s, "Accepted"));
    assertEquals("True", status(s, "SourceRunning"));
    assertEquals(2L, MigrationStatusAggregator.condition(s, "Failed").getObservedGeneration());
    assertNull(s.startTime);
  }

  @Test
  void phasesNeverMoveBack() {
    MigrationStatus s =
        MigrationStatusAggregator.next(
            null, 1, Step.to(MigrationPhase.Restoring, Reason.Restoring, "r"), T0);
    assertThrows(
        IllegalStateException.class,
        () ->
            MigrationStatusAggregator.next(
                s, 1, Step.to(MigrationPhase.Checkpointing, Reason.Checkpointing, "back"), T1));
  }

  @Test
  void preStagingSitsBetweenCheckpointingAndRestoringAndRecordsParentStagedAt() {
    assertEquals(true, new MigrationSpec().effectivePreCopy(), "pre-copy is the default");
    MigrationStatus s =
        MigrationStatusAggregator.next(
            null, 1, Step.to(MigrationPhase.Checkpointing, Reason.Checkpointing, "c"), T0);
    s =
        MigrationStatusAggregator.next(
            s,
            1,
            Step.to(MigrationPhase.PreStaging, Reason.PreStaging, "staging parents on n2")
                .restore("web-m", "web-copy"),
            T1);
    assertEquals(MigrationPhase.PreStaging, s.phase);
    assertEquals("True", status(s, "SourceRunning"), "the source runs unfrozen");
    s =
        MigrationStatusAggregator.next(
            s,
            1,
            Step.to(MigrationPhase.Restoring, Reason.Restoring, "final cut")
                .parentStagedAt("2026-12-03T10:00:04.100Z"),
            T2);
    assertEquals("2026-12-03T10:00:04.100Z", s.parentStagedAt);
    s =
        MigrationStatusAggregator.next(
            s, 1, Step.to(MigrationPhase.DeletingSource, Reason.DeletingSource, "ready"), T3);
    assertEquals("2026-12-03T10:00:04.100Z", s.parentStagedAt, "kept");
    MigrationStatus r = s;
    assertThrows(
        IllegalStateException.class,
        () ->
            MigrationStatusAggregator.next(
                r, 1, Step.to(MigrationPhase.PreStaging, Reason.PreStaging, "back"), T3));
  }
}
