package dev.stasis.operator;

import io.fabric8.kubernetes.api.model.Condition;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import jakarta.enterprise.context.ApplicationScoped;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Prometheus metrics of finished Restores and Migrations: outcomes by reason, time to a Ready
 * restored pod, migration downtime. Recorded when this operator writes the terminal status, so each
 * one is counted once per operator process.
 */
@ApplicationScoped
public class RestoreMetrics {
  private final MeterRegistry registry;
  private final Set<String> recorded = ConcurrentHashMap.newKeySet();

  public RestoreMetrics(MeterRegistry registry) {
    this.registry = registry;
  }

  void outcome(String kind, String uid, boolean completed, Condition failed, Long millis) {
    if (!recorded.add(kind + "/" + uid)) {
      return;
    }
    Counter.builder("stasis." + kind + ".outcomes")
        .description(kind + "s that ended, by result and reason")
        .tag("result", completed ? "Completed" : "Failed")
        .tag("reason", completed || failed == null ? "None" : failed.getReason())
        .register(registry)
        .increment();
    if (completed && millis != null) {
      Timer.builder(
              kind.equals("migration") ? "stasis.migration.downtime" : "stasis.restore.duration")
          .description(
              kind.equals("migration")
                  ? "Freeze of the source to the copy Ready"
                  : "Pod created to pod Ready")
          .publishPercentileHistogram()
          .register(registry)
          .record(Duration.ofMillis(millis));
    }
  }
}
