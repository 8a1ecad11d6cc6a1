package dev.stasis.operator;

import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** Operator settings (application.properties, env STASIS_..., Helm values). */
@ConfigMapping(prefix = "stasis.operator")
public interface StasisConfig {
  /**
   * The store used when a Checkpoint names none (s3://bucket/prefix). Its credentials live with the
   * node agents, not with the operator.
   */
  Optional<String> defaultStorageUri();

  /**
   * The admin's allow-list of stores (URI prefixes, e.g. s3://ckpt-prod/): a Checkpoint's
   * spec.storage.uri must lie under one of them. Empty: any s3:// store (never file://). The node
   * agents get the same list (chart value storage.allowedUris) and check it again.
   */
  Optional<List<String>> allowedStorageUris();

  /** The Lease the replicas elect their leader with. */
  @WithDefault("stasis-operator-leader")
  String leaseName();

  /** Namespace of the Lease; default: the operator's own (from its ServiceAccount). */
  Optional<String> leaseNamespace();

  /** Exit the process when this replica stops leading (it restarts as a follower). */
  @WithDefault("true")
  boolean exitOnLostLease();

  /** How often to look again at a checkpoint that waits (dispatched, queued, running). */
  @WithDefault("2s")
  Duration pollInterval();

  /**
   * How long after deletion the operator waits for the node agent to cancel or clean up before it
   * removes the agent's finalizer itself (agent gone with its node, for instance).
   */
  @WithDefault("60s")
  Duration agentCleanupGrace();

  /** Extra time a claimed checkpoint gets beyond its timeoutSeconds before it is failed. */
  @WithDefault("30s")
  Duration agentGrace();

  /**
   * RuntimeClass of restored pods: its handler is the Stasis runtime wrapper, which restores a
   * container whose pod names an image set for it (chart: runtime.className).
   */
  @WithDefault("stasis")
  String runtimeClassName();
}
