package dev.stasis.operator;

import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/**
 * Leader election through a Lease: with several operator replicas only the leader reconciles, so no
 * Event, status write or metric is produced twice. The operator SDK starts the controllers once
 * this replica holds the Lease (name and namespace from {@link StasisConfig}; the chart grants the
 * Lease verbs in the release namespace only).
 */
@ApplicationScoped
public class LeaderElection {
  @Produces
  @Singleton
  LeaderElectionConfiguration leaderElection(StasisConfig config) {
    return new LeaderElectionConfiguration(
        config.leaseName(),
        config.leaseNamespace().orElse(null),
        LeaderElectionConfiguration.LEASE_DURATION_DEFAULT_VALUE,
        LeaderElectionConfiguration.RENEW_DEADLINE_DEFAULT_VALUE,
        LeaderElectionConfiguration.RETRY_PERIOD_DEFAULT_VALUE,
        null,
        null,
        // A replica that lost the Lease exits so that it restarts as a follower; in tests the JVM
        // is shared with the test runner, which must not be exited when the app stops.
        config.exitOnLostLease());
  }
}
