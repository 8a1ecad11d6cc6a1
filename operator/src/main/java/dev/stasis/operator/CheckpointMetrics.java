package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Phase;
import dev.stasis.crds.StatusAggregator;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Prometheus metrics (/q/metrics) of finished checkpoints: per-phase durations, stored bytes,
 * failures by reason. Each checkpoint is counted once, and only if it finished after this operator
 * started, so a restart does not count the history again.
 */
@ApplicationScoped
public class CheckpointMetrics {
  private final MeterRegistry registry;
  private final Instant started = Instant.now().minusSeconds(1);
  private final Set<String> recorded = ConcurrentHashMap.newKeySet();

  public CheckpointMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  void recordOutcome(Checkpoint cr) {
    CheckpointStatus s = cr.getStatus();
    if (s == null || s.phase == null || !s.phase.terminal() || s.completionTime == null) {
      return;
    }
    if (Instant.parse(s.completionTime).isBefore(started.minusSeconds(1))
        || !recorded.add(cr.getMetadata().getUid())) {
      return;
    }
    if (s.phase == Phase.Failed) {
      var failed = StatusAggregator.condition(s, StatusAggregator.FAILED);
      Counter.builder("stasis.checkpoint.failures")
          .description("Checkpoints that ended Failed, by reason")
          .tag("reason", failed == null ? "Unknown" : failed.getReason())
          .register(registry)
          .increment();
      return;
    }
    Counter.builder("stasis.checkpoint.completed").register(registry).increment();
    if (s.sizeBytes != null) {
      DistributionSummary.builder("stasis.checkpoint.size")
          .baseUnit("bytes")
          .publishPercentileHistogram()
          .register(registry)
          .record(s.sizeBytes);
    }
    CheckpointStatus.Durations d = s.durations;
    if (d != null) {
      phase("freeze", d.freezeMillis);
      phase("frozen", d.frozenMillis);
      phase("dump", d.dumpMillis);
      phase("upload", d.uploadMillis);
    }
  }

  private void phase(String phase, Long millis) {
    if (millis == null) {
      return;
    }
    Timer.builder("stasis.checkpoint.phase")
        .description("Time spent in each step of a checkpoint")
        .tag("phase", phase)
        .publishPercentileHistogram()
        .register(registry)
        .record(Duration.ofMillis(millis));
  }
}
