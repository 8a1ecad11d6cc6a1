package dev.stasis.crds;

/** Labels, annotations and finalizers shared by the operator and the node agent. */
public final class Labels {
  private Labels() {}

  /** Label set by the operator on dispatch: the node whose agent must take the checkpoint. */
  public static final String NODE = "stasis.dev/node";

  /** Annotation: the metadata.generation the operator validated and dispatched. */
  public static final String ACCEPTED_GENERATION = "stasis.dev/accepted-generation";

  /** Annotation: when the operator dispatched the checkpoint (RFC 3339). */
  public static final String DISPATCHED_AT = "stasis.dev/dispatched-at";

  /**
   * Annotation written by the agent, under optimistic locking, before it touches the workload:
   * {@code <node>/<agent instance id>}. A checkpoint is claimed at most once, so two agents (or an
   * agent and its restarted self) never dump the same Checkpoint twice.
   */
  public static final String CLAIM = "stasis.dev/claim";

  /**
   * Finalizer the agent adds together with its claim and removes only after it cancelled a running
   * dump (workload thawed, partial upload removed) or deleted the stored images (policy Delete).
   */
  public static final String AGENT_FINALIZER = "stasis.dev/node-agent";

  /**
   * Annotation on a Checkpoint with {@code spec.holdFinalFreeze}: the agent, holding after
   * ParentStored with the pod running, takes the final cut once its value is {@link
   * #FINAL_FREEZE_GO}. An annotation because the spec is immutable once accepted.
   */
  public static final String FINAL_FREEZE = "stasis.dev/final-freeze";

  /** The value of {@link #FINAL_FREEZE} that releases the final cut. */
  public static final String FINAL_FREEZE_GO = "go";

  /** True when the object carries {@code stasis.dev/final-freeze: go}. */
  public static boolean finalFreezeGo(io.fabric8.kubernetes.api.model.HasMetadata o) {
    var a = o == null || o.getMetadata() == null ? null : o.getMetadata().getAnnotations();
    return a != null && FINAL_FREEZE_GO.equals(a.get(FINAL_FREEZE));
  }

  /** Object key prefix under the store for one checkpoint: namespace/name/uid. */
  public static String storeKey(Checkpoint cr) {
    return cr.getMetadata().getNamespace()
        + "/"
        + cr.getMetadata().getName()
        + "/"
        + cr.getMetadata().getUid();
  }
}
