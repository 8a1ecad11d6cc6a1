package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.Phase;
import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Restore;
import dev.stasis.crds.RestorePhase;
import dev.stasis.crds.RestoreSpec;
import dev.stasis.crds.RestoreStaging;
import dev.stasis.crds.RestoreStatus;
import dev.stasis.crds.RestoreStatusAggregator;
import dev.stasis.crds.StatusAggregator;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.ObjectReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * Stages, on this node, the images of restored pods whose source the runtime wrapper cannot fetch
 * with the node's defaults (a credentials or key Secret: {@link RestoreStaging}). The wrapper runs
 * in the container runtime without Kubernetes access; this agent reads the namespace's Secrets.
 *
 * <p>It watches the pods scheduled to its node (field selector {@code spec.nodeName}). For a pod
 * carrying the operator's {@code stasis.dev/restore-uid} and {@code restore-from.stasis.dev/<c>:
 * staged:<uid>/<c>} annotations, whose Restore (named by {@code stasis.dev/restore}, in the pod's
 * own namespace, with that uid) is not over, it fetches and verifies each container's images into
 * {@code <dir>/<uid>/<c>} exactly as {@code stasis fetch} does, with the Restore's or the
 * Checkpoint's Secrets read from that namespace under the checkpoint rules ({@link
 * StoreResolver#openSource}). Layout of {@code <dir>/<uid>/}:
 *
 * <ul>
 *   <li>{@code pod}: {@code namespace/name} of the pod the images are for, written first; the
 *       wrapper refuses another pod naming the same uid;
 *   <li>{@code <c>}: the verified images, fetched into a hidden temporary directory beside it and
 *       renamed into place only once complete, so that the wrapper sees all or nothing;
 *   <li>{@code <c>.failed}: the one-line reason when staging failed (the wrapper fails create with
 *       it at once instead of waiting).
 * </ul>
 *
 * Progress goes to the Restore's {@code Staged} condition and an Event. Once the Restore is over
 * (Completed, Failed, deleted) or its pod left the node, {@code <dir>/<uid>} is removed: checked on
 * every pod event and every {@code period}.
 *
 * <p>A Migration's pre-copy (MIGPRE.md) starts earlier: the agent also watches the Restores whose
 * {@code spec.nodeName} is its node (no field selector on a custom resource's spec: filtered here).
 * For one whose Checkpoint holds its final freeze and reported ParentStored, before any pod exists,
 * it fetches each container's parent image set through its parent manifest ({@link
 * CheckpointStore#fetchParent}: decoded and verified as {@code stasis fetch} does, written by the
 * source before it reported ParentStored) into {@code <c>.parent} (a hidden temporary directory
 * renamed into place) and reports the Restore's {@code ParentStaged}; a container with no parent
 * manifest ({@link CheckpointStore#hasParent}: the source had no live copy of it) is skipped and
 * named, its images are all fetched after the cut. The Migration then lets the source take its
 * final cut. When the pod comes, staging a container checks that the final manifest lists the same
 * parent entries, moves the verified parent in and downloads only the rest ({@link
 * CheckpointStore#fetch(Path, String, Path)}), so no parent byte is decoded or hashed in the
 * downtime; {@code <c>.parent} is removed once {@code <c>} is in place. Container names are DNS
 * labels, so {@code <c>.parent} never names a container.
 */
final class RestoreStager implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(RestoreStager.class.getName());
  static final String COMPONENT = "stasis-node-agent";

  private final KubernetesClient client;
  private final String node;
  private final StoreResolver stores;
  private final Path dir;
  private final Duration period;
  private final Map<String, Thread> running = new ConcurrentHashMap<>();

  /** Restore uids staged or failed by this agent: not fetched again. */
  private final Set<String> settled = ConcurrentHashMap.newKeySet();

  /** Restore uids whose parent sets this agent pre-staged or failed to: not fetched again. */
  private final Set<String> preStaged = ConcurrentHashMap.newKeySet();

  /** Suffix of a container's pre-staged parent objects in {@code <dir>/<uid>/}. */
  static final String PARENT_SUFFIX = ".parent";

  private final ScheduledExecutorService events =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "stasis-restore-stager");
            t.setDaemon(true);
            return t;
          });
  private SharedIndexInformer<Pod> informer;
  private SharedIndexInformer<Restore> restores;

  RestoreStager(
      KubernetesClient client, String node, StoreResolver stores, Path dir, Duration period) {
    this.client = client;
    this.node = node;
    this.stores = stores;
    this.dir = dir;
    this.period = period;
  }

  RestoreStager start() {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new IllegalStateException("cannot create the staging directory " + dir, e);
    }
    informer =
        client
            .pods()
            .inAnyNamespace()
            .withField("spec.nodeName", node)
            .inform(
                new ResourceEventHandler<>() {
                  @Override
                  public void onAdd(Pod p) {
                    submit(p);
                  }

                  @Override
                  public void onUpdate(Pod old, Pod p) {
                    submit(p);
                  }

                  @Override
                  public void onDelete(Pod p, boolean unknown) {
                    String uid = restoreUid(p);
                    if (uid != null) {
                      events.submit(() -> remove(uid, "its pod was deleted"));
                    }
                  }
                },
                period.toMillis());
    restores =
        client
            .resources(Restore.class)
            .inAnyNamespace()
            .inform(
                new ResourceEventHandler<>() {
                  @Override
                  public void onAdd(Restore r) {
                    submitPreStage(r);
                  }

                  @Override
                  public void onUpdate(Restore old, Restore r) {
                    submitPreStage(r);
                  }

                  @Override
                  public void onDelete(Restore r, boolean unknown) {
                    // the sweep removes what it staged (no pod and no live Restore)
                  }
                },
                period.toMillis());
    events.scheduleWithFixedDelay(
        () -> guard("sweep", this::sweep), 0, period.toMillis(), TimeUnit.MILLISECONDS);
    LOG.info("staging restores of pods on node " + node + " into " + dir);
    return this;
  }

  private void submit(Pod p) {
    events.submit(() -> guard(key(p), () -> handle(p)));
  }

  private void submitPreStage(Restore r) {
    if (onThisNode(r)) {
      events.submit(
          () ->
              guard(
                  r.getMetadata().getNamespace() + "/" + r.getMetadata().getName(),
                  () -> preStage(r)));
    }
  }

  /** A Restore pinned to this node and not over: its pre-staged parent sets stay. */
  private boolean onThisNode(Restore r) {
    RestoreStatus st = r.getStatus();
    return r.getSpec() != null
        && node.equals(r.getSpec().getNodeName())
        && (st == null || st.phase == null || !st.phase.terminal());
  }

  /**
   * Starts pre-staging the parent sets of {@code r} when it waits for its pod (Pending) and its
   * Checkpoint holds the final freeze, reported ParentStored and is not over, and it was not
   * (tried) already.
   */
  private void preStage(Restore r) {
    String uid = r.getMetadata().getUid();
    String cp = r.getSpec().getCheckpointName();
    if (!onThisNode(r) || cp == null || cp.isEmpty() || !RestoreStaging.isRestoreUid(uid)) {
      return;
    }
    RestoreStatus st = r.getStatus();
    if ((st != null && st.phase != null && st.phase != RestorePhase.Pending)
        || RestoreStatusAggregator.isParentStaged(st)
        || RestoreStatusAggregator.parentStageFailure(st) != null
        || preStaged.contains(uid)
        || settled.contains(uid)
        || running.containsKey(uid)) {
      return;
    }
    String ns = r.getMetadata().getNamespace();
    Checkpoint c = client.resources(Checkpoint.class).inNamespace(ns).withName(cp).get();
    var cs = c == null ? null : c.getStatus();
    var stored = StatusAggregator.condition(cs, StatusAggregator.PARENT_STORED);
    if (c == null
        || c.getSpec() == null
        || !c.getSpec().effectiveHoldFinalFreeze()
        || cs == null
        || cs.phase == null
        || cs.phase.terminal()
        || stored == null
        || !"True".equals(stored.getStatus())) {
      return;
    }
    Thread t =
        new Thread(() -> preStageParents(r, c), "stasis-prestage-" + r.getMetadata().getName());
    t.setDaemon(true);
    running.put(uid, t);
    t.start();
  }

  private void preStageParents(Restore r, Checkpoint c) {
    String uid = r.getMetadata().getUid();
    Path udir = dir.resolve(uid);
    String ns = r.getMetadata().getNamespace();
    List<String> names = c.getStatus().containers.stream().map(x -> x.name).toList();
    try {
      String base =
          trim(c.getStatus().location != null ? c.getStatus().location : stores.location(c));
      Files.createDirectories(
          udir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      long bytes = 0;
      List<String> fetched = new ArrayList<>();
      List<String> none = new ArrayList<>();
      for (String name : names) {
        Path target = udir.resolve(name + PARENT_SUFFIX);
        if (Files.isDirectory(target)) {
          fetched.add(name);
          continue;
        }
        try (CheckpointStore store =
            stores.openSource(
                ns, base + "/" + name, c.getSpec().getStorage(), c.getSpec().getEncryption())) {
          // A container the source had no live copy of stored no parent set (the source's
          // ParentStored names it): nothing to stage, the pod's staging fetches it whole after
          // the cut. One that has a parent manifest is fetched and verified: a bad one fails.
          if (!store.hasParent()) {
            none.add(name);
            continue;
          }
          Path tmp = Files.createTempDirectory(udir, "." + name + PARENT_SUFFIX + ".tmp-");
          try {
            bytes += store.fetchParent(tmp).bytes();
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
          } finally {
            deleteTree(tmp);
          }
        }
        fetched.add(name);
      }
      String msg =
          (fetched.isEmpty()
                  ? "no parent image set to stage"
                  : "parent image sets of "
                      + String.join(", ", fetched)
                      + " staged on node "
                      + node
                      + " ("
                      + bytes
                      + " bytes verified)")
              + " from "
              + base
              + (none.isEmpty()
                  ? ""
                  : "; "
                      + String.join(", ", none)
                      + (none.size() == 1 ? " has" : " have")
                      + " no parent set: fetched whole at the cut");
      LOG.info(ns + "/" + r.getMetadata().getName() + ": " + msg);
      status(r, Reason.ParentStaged, msg);
    } catch (IOException | RuntimeException e) {
      String line = oneLine(e.getMessage() == null ? e.toString() : e.getMessage());
      LOG.warning(ns + "/" + r.getMetadata().getName() + ": cannot pre-stage: " + line);
      for (String name : names) {
        deleteTree(udir.resolve(name + PARENT_SUFFIX));
      }
      try {
        status(r, Reason.StageFailed, line, true);
      } catch (KubernetesClientException x) {
        LOG.warning("cannot write the Restore's status: " + x.getMessage());
      }
    } finally {
      preStaged.add(uid);
      running.remove(uid);
    }
  }

  private static void guard(String what, Runnable r) {
    try {
      r.run();
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, what + ": " + e.getMessage(), e);
    }
  }

  static String restoreUid(Pod p) {
    Map<String, String> a = p.getMetadata().getAnnotations();
    return a == null ? null : a.get(PodTemplates.RESTORE_UID_ANNOTATION);
  }

  /**
   * The containers of {@code p} whose images are staged, in annotation order; annotations that do
   * not name this Restore's uid and their own container are ignored (and logged).
   */
  static Map<String, RestoreStaging.Ref> stagedContainers(Pod p, String uid) {
    Map<String, RestoreStaging.Ref> out = new LinkedHashMap<>();
    Map<String, String> a = p.getMetadata().getAnnotations();
    if (a == null) {
      return out;
    }
    a.forEach(
        (k, v) -> {
          if (!k.startsWith(PodTemplates.RESTORE_FROM_PREFIX) || !RestoreStaging.isStaged(v)) {
            return;
          }
          String c = k.substring(PodTemplates.RESTORE_FROM_PREFIX.length());
          try {
            RestoreStaging.Ref r = RestoreStaging.Ref.parse(v);
            if (r.restoreUid().equals(uid) && r.container().equals(c)) {
              out.put(c, r);
              return;
            }
          } catch (IllegalArgumentException e) {
            // logged below
          }
          LOG.warning(
              key(p) + ": ignoring " + k + ": " + v + " (not staged:" + uid + "/" + c + ")");
        });
    return out;
  }

  private void handle(Pod p) {
    String uid = restoreUid(p);
    if (uid == null) {
      return;
    }
    Map<String, RestoreStaging.Ref> staged = stagedContainers(p, uid);
    if (staged.isEmpty()) {
      return;
    }
    if (!RestoreStaging.isRestoreUid(uid)) {
      return;
    }
    if (p.getSpec() == null || !node.equals(p.getSpec().getNodeName())) {
      return; // not (or no longer) this node's: its own agent stages it
    }
    if (p.getMetadata().getDeletionTimestamp() != null) {
      remove(uid, "its pod is being deleted");
      return;
    }
    Restore r = restoreOf(p, uid);
    if (r == null) {
      remove(uid, "its Restore is gone");
      return;
    }
    RestoreStatus st = r.getStatus();
    if (st != null && st.phase != null && st.phase.terminal()) {
      remove(uid, "its Restore is " + st.phase);
      return;
    }
    if (settled.contains(uid) || running.containsKey(uid)) {
      return;
    }
    Path udir = dir.resolve(uid);
    if (staged.keySet().stream().allMatch(c -> Files.isDirectory(udir.resolve(c)))) {
      settled.add(uid); // staged by this agent's previous instance
      return;
    }
    Thread t =
        new Thread(() -> stage(p, r, staged.keySet()), "stasis-stage-" + r.getMetadata().getName());
    t.setDaemon(true);
    running.put(uid, t);
    t.start();
  }

  /** The Restore that made {@code p}: in the pod's namespace, with the uid the pod names. */
  private Restore restoreOf(Pod p, String uid) {
    String ref = p.getMetadata().getAnnotations().get(PodTemplates.RESTORE_ANNOTATION);
    String ns = p.getMetadata().getNamespace();
    if (ref == null || !ref.startsWith(ns + "/")) {
      return null;
    }
    Restore r =
        client
            .resources(Restore.class)
            .inNamespace(ns)
            .withName(ref.substring(ns.length() + 1))
            .get();
    return r != null && uid.equals(r.getMetadata().getUid()) ? r : null;
  }

  /** Where a Restore's containers come from and the store rules that apply to it. */
  record Source(
      String base, CheckpointSpec.StorageSpec storage, CheckpointSpec.EncryptionSpec encryption) {}

  private Source source(Restore r) throws StorageException {
    RestoreSpec spec = r.getSpec();
    String ns = r.getMetadata().getNamespace();
    if (spec.getCheckpointName() != null && !spec.getCheckpointName().isEmpty()) {
      Checkpoint c =
          client
              .resources(Checkpoint.class)
              .inNamespace(ns)
              .withName(spec.getCheckpointName())
              .get();
      if (c == null || c.getStatus() == null || c.getStatus().phase != Phase.Completed) {
        throw new StorageException(
            "checkpoint " + ns + "/" + spec.getCheckpointName() + " is not there or not Completed");
      }
      return new Source(
          c.getStatus().location, c.getSpec().getStorage(), c.getSpec().getEncryption());
    }
    stores.checkRestoreUri(ns, spec.getUri(), spec.getCredentialsSecretRef());
    CheckpointSpec.StorageSpec st = new CheckpointSpec.StorageSpec();
    st.setUri(spec.getUri());
    st.setCredentialsSecretRef(spec.getCredentialsSecretRef());
    return new Source(spec.getUri(), st, spec.getEncryption());
  }

  private void stage(Pod p, Restore r, Set<String> containers) {
    String uid = r.getMetadata().getUid();
    Path udir = dir.resolve(uid);
    String ns = p.getMetadata().getNamespace();
    List<String> names = new ArrayList<>(containers);
    try {
      Source src = source(r);
      String base = trim(src.base());
      status(
          r,
          Reason.Staging,
          "node agent on " + node + " fetching " + String.join(", ", names) + " from " + base);
      Files.createDirectories(
          udir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      writeAtomically(udir.resolve("pod"), ns + "/" + p.getMetadata().getName() + "\n");
      long bytes = 0;
      long local = 0;
      for (String c : names) {
        Path target = udir.resolve(c);
        if (Files.isDirectory(target)) {
          continue;
        }
        Path tmp = Files.createTempDirectory(udir, "." + c + ".tmp-");
        Path pre = udir.resolve(c + PARENT_SUFFIX);
        try (CheckpointStore store =
            stores.openSource(ns, base + "/" + c, src.storage(), src.encryption())) {
          CheckpointStore.Fetched f = store.fetch(tmp, null, Files.isDirectory(pre) ? pre : null);
          bytes += f.bytes();
          local += f.localBytes();
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
          deleteTree(pre);
        } finally {
          deleteTree(tmp);
        }
      }
      String msg =
          String.join(", ", names)
              + " staged on node "
              + node
              + " ("
              + bytes
              + " bytes verified"
              + (local > 0 ? ", " + local + " of them from the pre-staged parent sets" : "")
              + ") from "
              + base;
      LOG.info(ns + "/" + r.getMetadata().getName() + ": " + msg);
      status(r, Reason.Staged, msg);
    } catch (IOException | RuntimeException e) {
      String line = oneLine(e.getMessage() == null ? e.toString() : e.getMessage());
      LOG.warning(ns + "/" + r.getMetadata().getName() + ": cannot stage: " + line);
      for (String c : names) {
        try {
          if (!Files.isDirectory(udir.resolve(c))) {
            Files.createDirectories(udir);
            writeAtomically(udir.resolve(c + RestoreStaging.FAILED_SUFFIX), line + "\n");
          }
        } catch (IOException x) {
          LOG.warning("cannot record the failure in " + udir + ": " + x.getMessage());
        }
      }
      try {
        status(r, Reason.StageFailed, line);
      } catch (KubernetesClientException x) {
        LOG.warning("cannot write the Restore's status: " + x.getMessage());
      }
    } finally {
      settled.add(uid);
      running.remove(uid);
    }
  }

  /** How long a report waits for the operator to record the Restore's node (see status()). */
  static final Duration NODE_RECORDED_WAIT = Duration.ofSeconds(60);

  /**
   * The Staged condition through the aggregator, under optimistic locking; an Event per change.
   * Written only once the operator recorded in the status that the Restore's pod runs on this node
   * (status.nodeName): the chart's admission policy admits an agent's status write only then, and
   * only a change of the Staged condition (issue 14). Until it is recorded the report waits
   * (bounded); a Restore recorded on another node is not this agent's to report on.
   */
  private void status(Restore r, Reason reason, String message) {
    status(r, reason, message, reason == Reason.ParentStaged);
  }

  /** {@code parent}: the ParentStaged condition (pre-staging), else Staged. */
  private void status(Restore r, Reason reason, String message, boolean parent) {
    String ns = r.getMetadata().getNamespace();
    String name = r.getMetadata().getName();
    long waitUntil = System.nanoTime() + NODE_RECORDED_WAIT.toNanos();
    for (int attempt = 0; attempt < 10; attempt++) {
      Restore cur = client.resources(Restore.class).inNamespace(ns).withName(name).get();
      if (cur == null || !r.getMetadata().getUid().equals(cur.getMetadata().getUid())) {
        return;
      }
      String recorded = cur.getStatus() == null ? null : cur.getStatus().nodeName;
      if (recorded == null || recorded.isEmpty()) {
        if (System.nanoTime() > waitUntil) {
          LOG.warning(
              ns + "/" + name + ": its node is not recorded yet; " + reason + " not reported");
          return;
        }
        attempt--;
        sleep(Duration.ofMillis(500));
        continue;
      }
      if (!node.equals(recorded)) {
        LOG.warning(
            ns + "/" + name + ": its pod is recorded on node " + recorded + "; not reporting");
        return;
      }
      RestoreStatus next =
          parent
              ? RestoreStatusAggregator.parentStaged(
                  cur.getStatus(),
                  cur.getMetadata().getGeneration(),
                  reason,
                  message,
                  Instant.now())
              : RestoreStatusAggregator.staged(
                  cur.getStatus(),
                  cur.getMetadata().getGeneration(),
                  reason,
                  message,
                  Instant.now());
      if (next == cur.getStatus()) {
        return; // over: nothing to report any more
      }
      cur.setStatus(next);
      try {
        client.resource(cur).updateStatus();
      } catch (KubernetesClientException e) {
        if (e.getCode() == 409) {
          continue;
        }
        if (e.getCode() == 404) {
          return;
        }
        throw e;
      }
      event(cur, reason, message);
      return;
    }
    throw new IllegalStateException("status of restore " + ns + "/" + name + " keeps changing");
  }

  private void event(Restore r, Reason reason, String message) {
    String ts = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
    String ns = r.getMetadata().getNamespace();
    try {
      client
          .v1()
          .events()
          .inNamespace(ns)
          .resource(
              new EventBuilder()
                  .withNewMetadata()
                  .withName(r.getMetadata().getName() + "." + UUID.randomUUID())
                  .withNamespace(ns)
                  .endMetadata()
                  .withInvolvedObject(
                      new ObjectReferenceBuilder()
                          .withApiVersion(r.getApiVersion())
                          .withKind(r.getKind())
                          .withName(r.getMetadata().getName())
                          .withNamespace(ns)
                          .withUid(r.getMetadata().getUid())
                          .build())
                  .withType(reason == Reason.StageFailed ? "Warning" : "Normal")
                  .withReason(reason.name())
                  .withMessage(message)
                  .withNewSource(COMPONENT, node)
                  .withFirstTimestamp(ts)
                  .withLastTimestamp(ts)
                  .withCount(1)
                  .build())
          .create();
    } catch (KubernetesClientException e) {
      LOG.log(Level.WARNING, "could not record event " + reason + " on " + ns, e);
    }
  }

  /**
   * Removes the staged images of Restores that are over or whose pod left this node, and looks
   * again at the pods that have some (their Restore may have ended without a pod event).
   */
  private void sweep() {
    if (informer == null || !informer.hasSynced() || restores == null || !restores.hasSynced()) {
      return;
    }
    Map<String, Pod> pods = new LinkedHashMap<>();
    for (Pod p : informer.getStore().list()) {
      String uid = restoreUid(p);
      if (uid != null) {
        pods.put(uid, p);
      }
    }
    Set<String> present = new HashSet<>();
    try (Stream<Path> l = Files.list(dir)) {
      l.forEach(x -> present.add(x.getFileName().toString()));
    } catch (IOException e) {
      LOG.warning("cannot list the staging directory " + dir + ": " + e.getMessage());
      return;
    }
    Set<String> live = new HashSet<>();
    for (Restore r : restores.getStore().list()) {
      if (onThisNode(r)) {
        live.add(r.getMetadata().getUid());
        preStage(r); // its Checkpoint may have reported ParentStored since
      }
    }
    for (String uid : present) {
      Pod p = pods.get(uid);
      if (p != null) {
        handle(p);
      } else if (!live.contains(uid)) {
        remove(uid, "no pod on this node restores it and no Restore pre-stages it");
      }
    }
  }

  private void remove(String uid, String why) {
    if (running.containsKey(uid)) {
      return; // the next sweep looks again once the fetch ended
    }
    settled.remove(uid);
    preStaged.remove(uid);
    Path udir = dir.resolve(uid);
    if (!udir.normalize().getParent().equals(dir.normalize()) || !Files.exists(udir)) {
      return;
    }
    deleteTree(udir);
    LOG.info("removed staged images " + udir + ": " + why);
  }

  private static void sleep(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  static void writeAtomically(Path f, String text) throws IOException {
    Path tmp = f.resolveSibling("." + f.getFileName() + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.UTF_8);
    Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  static void deleteTree(Path p) {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> w = Files.walk(p)) {
      w.sorted(Comparator.reverseOrder())
          .forEach(
              x -> {
                try {
                  Files.deleteIfExists(x);
                } catch (IOException e) {
                  LOG.warning("cannot remove " + x + ": " + e.getMessage());
                }
              });
    } catch (IOException e) {
      LOG.warning("cannot remove " + p + ": " + e.getMessage());
    }
  }

  private static String oneLine(String s) {
    String t = s.strip();
    int nl = t.indexOf('\n');
    return nl < 0 ? t : t.substring(0, nl).strip();
  }

  private static String trim(String s) {
    String t = s.trim();
    while (t.endsWith("/")) {
      t = t.substring(0, t.length() - 1);
    }
    return t;
  }

  private static String key(Pod p) {
    return p.getMetadata().getNamespace() + "/" + p.getMetadata().getName();
  }

  /** True while the images of the Restore with this uid are being fetched. */
  boolean isStaging(String restoreUid) {
    return running.containsKey(restoreUid);
  }

  @Override
  public void close() {
    if (informer != null) {
      informer.close();
    }
    if (restores != null) {
      restores.close();
    }
    events.shutdownNow();
  }
}
