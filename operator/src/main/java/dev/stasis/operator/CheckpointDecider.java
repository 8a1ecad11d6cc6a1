package dev.stasis.operator;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.CheckpointStatus.ContainerRef;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.StoragePolicy;
import dev.stasis.crds.Transition;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * The operator's decisions, free of I/O: from what the reconciler read (the Checkpoint, its pod,
 * which Secrets exist, the other checkpoints of the same pod, the clock) to what it must write.
 *
 * <p>Ownership of the status: the operator writes it until a node agent claims the checkpoint
 * ({@link Labels#CLAIM}); afterwards only the agent does, except that the operator fails a claimed
 * checkpoint whose agent overran its timeout (the aggregator makes the first terminal write win).
 */
public final class CheckpointDecider {

  /** What the reconciler observed. {@code pod} is null when it does not exist. */
  public record Observed(
      Checkpoint cr,
      Pod pod,
      Predicate<String> secretExists,
      List<Checkpoint> samePodCheckpoints,
      Instant now) {}

  /**
   * What to do. {@code transition} null: leave the status alone. {@code dispatchTo} non-null: label
   * the checkpoint for that node's agent. {@code recheckAfter} null: nothing to wait for.
   */
  public record Decision(Transition transition, String dispatchTo, Duration recheckAfter) {}

  private final Optional<String> defaultStorageUri;
  private final Duration poll;
  private final Duration agentGrace;
  private final List<String> allowedStorage;

  public CheckpointDecider(Optional<String> defaultStorageUri, Duration poll, Duration agentGrace) {
    this(defaultStorageUri, poll, agentGrace, List.of());
  }

  public CheckpointDecider(
      Optional<String> defaultStorageUri,
      Duration poll,
      Duration agentGrace,
      List<String> allowedStorage) {
    this.defaultStorageUri = defaultStorageUri;
    this.poll = poll;
    this.agentGrace = agentGrace;
    this.allowedStorage = List.copyOf(allowedStorage);
  }

  public Decision decide(Observed o) {
    Checkpoint cr = o.cr();
    CheckpointStatus st = cr.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      return new Decision(null, null, null);
    }
    Map<String, String> ann = annotations(cr);
    String claim = ann.get(Labels.CLAIM);
    String node = labels(cr).get(Labels.NODE);
    int timeout = cr.getSpec().effectiveTimeoutSeconds();

    String acceptedGen = ann.get(Labels.ACCEPTED_GENERATION);
    if (claim == null
        && acceptedGen != null
        && !acceptedGen.equals(String.valueOf(cr.getMetadata().getGeneration()))) {
      return fail(
          Reason.SpecChanged,
          "spec was edited after the checkpoint was accepted (generation "
              + acceptedGen
              + " -> "
              + cr.getMetadata().getGeneration()
              + "); a Checkpoint is immutable, create a new one");
    }

    if (claim != null) {
      // The agent owns the checkpoint; only its death or hang is the operator's business.
      Instant since = parse(st == null ? null : st.startTime, ann.get(Labels.DISPATCHED_AT));
      if (since != null && o.now().isAfter(since.plusSeconds(timeout).plus(agentGrace))) {
        return fail(
            Reason.TimedOut,
            "node agent "
                + claim
                + " did not finish within timeoutSeconds="
                + timeout
                + " (plus "
                + agentGrace.toSeconds()
                + "s grace)");
      }
      return new Decision(null, null, poll);
    }

    if (node != null) {
      Instant at = parse(ann.get(Labels.DISPATCHED_AT), null);
      if (at != null && o.now().isAfter(at.plusSeconds(timeout))) {
        return fail(
            Reason.AgentUnavailable,
            "no node agent on node "
                + node
                + " claimed the checkpoint within timeoutSeconds="
                + timeout
                + "; is the stasis node-agent DaemonSet running there?");
      }
      return new Decision(null, null, poll);
    }

    return validateAndDispatch(o);
  }

  private Decision validateAndDispatch(Observed o) {
    Checkpoint cr = o.cr();
    CheckpointSpec spec = cr.getSpec();
    String ns = cr.getMetadata().getNamespace();
    String podRef = "pod " + ns + "/" + spec.getPodName();
    Pod pod = o.pod();
    if (pod == null) {
      return fail(Reason.PodNotFound, podRef + " not found");
    }
    String podPhase = pod.getStatus() == null ? null : pod.getStatus().getPhase();
    if (!"Running".equals(podPhase)) {
      return fail(Reason.PodNotRunning, podRef + " is " + podPhase + ", not Running");
    }
    String nodeName = pod.getSpec().getNodeName();
    if (nodeName == null || nodeName.isEmpty()) {
      return fail(Reason.PodNotScheduled, podRef + " has no node");
    }
    List<String> present = pod.getSpec().getContainers().stream().map(Container::getName).toList();
    List<String> wanted =
        spec.getContainers() == null || spec.getContainers().isEmpty()
            ? present
            : spec.getContainers();
    List<ContainerRef> refs = new ArrayList<>();
    for (String name : wanted) {
      if (!present.contains(name)) {
        return fail(
            Reason.ContainerNotFound,
            podRef
                + " has no container '"
                + name
                + "' (it has: "
                + String.join(", ", present)
                + ")");
      }
      ContainerStatus cs =
          pod.getStatus().getContainerStatuses().stream()
              .filter(s -> name.equals(s.getName()))
              .findFirst()
              .orElse(null);
      if (cs == null
          || cs.getContainerID() == null
          || cs.getContainerID().isEmpty()
          || cs.getState() == null
          || cs.getState().getRunning() == null) {
        return fail(
            Reason.ContainerNotStarted,
            "container '" + name + "' of " + podRef + " is not running");
      }
      refs.add(new ContainerRef(name, cs.getContainerID()));
    }

    CheckpointSpec.StorageSpec storage = spec.getStorage();
    if (storage == null && defaultStorageUri.isEmpty()) {
      return fail(
          Reason.StorageNotConfigured,
          "spec.storage is not set and the operator has no default store"
              + " (stasis.operator.default-storage-uri)");
    }
    String notAllowed = StoragePolicy.violation(ns, storage, defaultStorageUri, allowedStorage);
    if (notAllowed != null) {
      return fail(Reason.StorageNotAllowed, notAllowed);
    }
    if (storage != null && storage.getCredentialsSecretRef() != null) {
      Decision bad =
          checkSecret(
              o,
              "storage",
              storage.getCredentialsSecretRef(),
              Reason.StorageSecretInOtherNamespace,
              Reason.StorageSecretNotFound);
      if (bad != null) {
        return bad;
      }
    }
    if (spec.getEncryption() != null) {
      Decision bad =
          checkSecret(
              o,
              "encryption key",
              spec.getEncryption().getKeySecretRef(),
              Reason.EncryptionSecretInOtherNamespace,
              Reason.EncryptionSecretNotFound);
      if (bad != null) {
        return bad;
      }
    }

    Optional<Checkpoint> ahead =
        o.samePodCheckpoints().stream()
            .filter(c -> !c.getMetadata().getUid().equals(cr.getMetadata().getUid()))
            .filter(
                c ->
                    c.getStatus() == null
                        || c.getStatus().phase == null
                        || !c.getStatus().phase.terminal())
            .filter(c -> before(c, cr))
            .min(ORDER);
    if (ahead.isPresent()) {
      return new Decision(
          Transition.to(
              Phase.Pending,
              Reason.WaitingForPreviousCheckpoint,
              "waiting for checkpoint "
                  + ahead.get().getMetadata().getName()
                  + " of the same pod to finish"),
          null,
          poll);
    }
    return new Decision(
        Transition.to(
                Phase.Pending,
                Reason.Dispatched,
                "dispatched to the node agent on "
                    + nodeName
                    + " ("
                    + refs.stream().map(r -> r.name).collect(Collectors.joining(", "))
                    + ")")
            .node(nodeName, pod.getMetadata().getUid())
            .containers(refs),
        nodeName,
        poll);
  }

  private static Decision checkSecret(
      Observed o, String what, CheckpointSpec.SecretRef ref, Reason otherNs, Reason missing) {
    String ns = o.cr().getMetadata().getNamespace();
    if (ref.getNamespace() != null
        && !ref.getNamespace().isEmpty()
        && !ref.getNamespace().equals(ns)) {
      return fail(
          otherNs,
          what
              + " secret "
              + ref.getNamespace()
              + "/"
              + ref.getName()
              + " is not in the checkpoint's namespace "
              + ns
              + "; only same-namespace secrets may be used");
    }
    if (!o.secretExists().test(ref.getName())) {
      return fail(missing, what + " secret " + ns + "/" + ref.getName() + " not found");
    }
    return null;
  }

  /** Creation order, ties broken by name: checkpoints of one pod run in this order. */
  static final Comparator<Checkpoint> ORDER =
      Comparator.comparing((Checkpoint c) -> String.valueOf(c.getMetadata().getCreationTimestamp()))
          .thenComparing(c -> c.getMetadata().getName());

  private static boolean before(Checkpoint a, Checkpoint b) {
    return ORDER.compare(a, b) < 0;
  }

  private static Decision fail(Reason r, String message) {
    return new Decision(Transition.failed(r, message), null, null);
  }

  private static Instant parse(String a, String b) {
    String s = a != null ? a : b;
    return s == null ? null : Instant.parse(s);
  }

  static Map<String, String> annotations(Checkpoint cr) {
    Map<String, String> m = cr.getMetadata().getAnnotations();
    return m == null ? Map.of() : m;
  }

  static Map<String, String> labels(Checkpoint cr) {
    Map<String, String> m = cr.getMetadata().getLabels();
    return m == null ? Map.of() : m;
  }
}
