package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.stasis.crds.RestoreStatusAggregator.Step;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class RestoreStatusAggregatorTest {
  static final Instant T0 = Instant.parse("2026-12-03T10:00:00Z");
  static final Instant T1 = Instant.parse("2026-12-03T10:00:04.250Z");
  static final Instant T2 = Instant.parse("2026-12-03T10:00:09.500Z");

  static String status(RestoreStatus s, String type) {
    return RestoreStatusAggregator.condition(s, type).getStatus();
  }

  static String reason(RestoreStatus s, String type) {
    return RestoreStatusAggregator.condition(s, type).getReason();
  }

  @Test
  void happyPathKeepsFactsAndMarksReadyWithTheTimeItWasSeen() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null,
            1,
            Step.to(RestorePhase.Restoring, Reason.PodCreated, "created pod web-2")
                .pod("web-2", "uid-2")
                .location("s3://b/ns/c/uid"),
            T0);
    assertEquals(RestorePhase.Restoring, s.phase);
    assertEquals("True", status(s, "Accepted"));
    assertEquals("False", status(s, "Ready"));
    assertEquals("PodCreated", reason(s, "Ready"));
    assertEquals("2026-12-03T10:00:00Z", s.startTime);
    s =
        RestoreStatusAggregator.next(
            s, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "scheduled").node("n2"), T1);
    assertEquals("web-2", s.podName, "facts survive steps that do not mention them");
    assertEquals("s3://b/ns/c/uid", s.location);
    assertEquals("n2", s.nodeName);
    assertEquals(
        "2026-12-03T10:00:00Z",
        RestoreStatusAggregator.condition(s, "Ready").getLastTransitionTime(),
        "Ready stayed False: its transition time stays");
    s =
        RestoreStatusAggregator.next(
            s, 1, Step.to(RestorePhase.Completed, Reason.RestoredPodReady, "pod Ready"), T2);
    assertEquals("True", status(s, "Ready"));
    assertEquals("False", status(s, "Failed"));
    assertEquals("2026-12-03T10:00:09.500Z", s.readyAt);
    assertEquals("2026-12-03T10:00:09Z", s.completionTime);
    assertEquals(1L, RestoreStatusAggregator.condition(s, "Ready").getObservedGeneration());
    assertEquals(3, s.conditions.size());
  }

  @Test
  void validationFailureIsNotAcceptedAndTerminal() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null, 3, Step.failed(Reason.CheckpointNotCompleted, "checkpoint ns/c is Running"), T0);
    assertEquals(RestorePhase.Failed, s.phase);
    assertEquals("False", status(s, "Accepted"));
    assertEquals("CheckpointNotCompleted", reason(s, "Accepted"));
    assertEquals("True", status(s, "Failed"));
    assertEquals(3L, s.observedGeneration);
    assertNull(s.startTime, "nothing was started");
    RestoreStatus after =
        RestoreStatusAggregator.next(
            s, 3, Step.to(RestorePhase.Completed, Reason.RestoredPodReady, "late"), T1);
    assertSame(s, after, "terminal phases never change");
  }

  @Test
  void podFailureAfterAcceptanceKeepsAccepted() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "created"), T0);
    s =
        RestoreStatusAggregator.next(
            s, 1, Step.failed(Reason.RestoredPodFailed, "container app: Error (exit 1)"), T1);
    assertEquals("True", status(s, "Accepted"));
    assertEquals("RestoredPodFailed", reason(s, "Failed"));
    assertEquals("container app: Error (exit 1)", s.message);
  }

  @Test
  void phasesNeverMoveBack() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "created"), T0);
    RestoreStatus r = s;
    assertThrows(
        IllegalStateException.class,
        () ->
            RestoreStatusAggregator.next(
                r, 1, Step.to(RestorePhase.Pending, Reason.Accepted, "back"), T1));
  }

  @Test
  void parentStagedIsTheAgentsAndTheOperatorsStepsKeepIt() {
    RestoreStatus s =
        RestoreStatusAggregator.next(
            null, 1, Step.to(RestorePhase.Pending, Reason.Accepted, "waiting for the cut"), T0);
    assertEquals(false, RestoreStatusAggregator.isParentStaged(s));
    s = RestoreStatusAggregator.parentStaged(s, 1, Reason.ParentStaged, "2 parent sets", T1);
    assertEquals("True", status(s, "ParentStaged"));
    assertEquals("ParentStaged", reason(s, "ParentStaged"));
    assertEquals("2026-12-03T10:00:04.250Z", s.parentStagedAt);
    assertEquals(RestorePhase.Pending, s.phase, "the agent never moves the phase");
    assertEquals("waiting for the cut", s.message);
    assertEquals(true, RestoreStatusAggregator.isParentStaged(s));
    s =
        RestoreStatusAggregator.next(
            s, 1, Step.to(RestorePhase.Restoring, Reason.PodCreated, "created").pod("p", "u"), T2);
    assertEquals("True", status(s, "ParentStaged"), "the operator's step keeps the condition");
    assertEquals("2026-12-03T10:00:04.250Z", s.parentStagedAt);
    assertEquals(4, s.conditions.size());
    RestoreStatus again =
        RestoreStatusAggregator.parentStaged(s, 1, Reason.ParentStaged, "again", T2);
    assertEquals("2026-12-03T10:00:04.250Z", again.parentStagedAt, "first time kept");
    RestoreStatus r = s;
    assertThrows(
        IllegalArgumentException.class,
        () -> RestoreStatusAggregator.parentStaged(r, 1, Reason.Staged, "x", T2));
  }

  @Test
  void parentStageFailureCarriesTheOneLineReason() {
    RestoreStatus s =
        RestoreStatusAggregator.parentStaged(
            null, 1, Reason.StageFailed, "app/parent/pages-1.img: digest mismatch", T0);
    assertEquals("False", status(s, "ParentStaged"));
    assertNull(s.parentStagedAt);
    assertEquals(
        "app/parent/pages-1.img: digest mismatch", RestoreStatusAggregator.parentStageFailure(s));
    assertNull(RestoreStatusAggregator.stageFailure(s), "Staged is another condition");
    RestoreStatus failed =
        RestoreStatusAggregator.next(s, 1, Step.failed(Reason.StageFailed, "x"), T1);
    assertSame(
        failed,
        RestoreStatusAggregator.parentStaged(failed, 1, Reason.ParentStaged, "late", T2),
        "nothing left to stage for");
  }
}
