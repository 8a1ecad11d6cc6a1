package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointSpec;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Transition;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The DaemonSet side: watches, through the API server, the Checkpoints the operator assigned to
 * this node (label {@link Labels#NODE}) and runs them. It listens on no port: all its input comes
 * from the API server, authenticated by its ServiceAccount, and all its output goes back there.
 *
 * <p>Exactly-once: before touching the workload the agent claims the Checkpoint (annotation {@link
 * Labels#CLAIM} and its finalizer, written under optimistic locking). A Checkpoint claimed by an
 * earlier instance of this agent (restart mid-dump) is never dumped again: if its manifests are in
 * the store the result is reported Completed, otherwise the partial upload is removed, the
 * containers are thawed and it ends Failed (AgentRestarted).
 */
public final class NodeAgent implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(NodeAgent.class.getName());

  private final KubernetesClient client;
  private final String node;
  private final String instance;
  private final StoreResolver stores;
  private final ContainerProcesses processes;
  private final ProcessDumper dumper;
  private final Map<String, CheckpointJob> running = new ConcurrentHashMap<>();
  private final ExecutorService events =
      Executors.newSingleThreadExecutor(r -> daemon(r, "stasis-agent-events"));
  private SharedIndexInformer<Checkpoint> informer;

  /** Null unless STASIS_STAGED_DIR is set (chart: runtime.staging.enabled). */
  private final RestoreStager stager;

  public NodeAgent(
      KubernetesClient client,
      String node,
      String defaultStorage,
      Map<String, String> env,
      ContainerProcesses processes,
      ProcessDumper dumper) {
    this.client = client;
    this.node = node;
    this.instance = UUID.randomUUID().toString().substring(0, 8);
    this.stores = new StoreResolver(client, defaultStorage, env);
    this.processes = processes;
    this.dumper = dumper;
    String staged = env.get("STASIS_STAGED_DIR");
    this.stager =
        staged == null || staged.isBlank()
            ? null
            : new RestoreStager(
                client,
                node,
                stores,
                java.nio.file.Path.of(staged),
                java.time.Duration.ofSeconds(
                    Long.parseLong(env.getOrDefault("STASIS_STAGE_SWEEP_SECONDS", "30"))));
    String spool = env.get("STASIS_SPOOL_DIR");
    if (spool != null && !spool.isBlank()) {
      // spool files of dumps killed with the previous agent (a restart, an eviction)
      try {
        int n = dev.stasis.storage.Spools.sweep(java.nio.file.Path.of(spool));
        if (n > 0) {
          LOG.info("removed " + n + " spool file(s) of dead dumps from " + spool);
        }
      } catch (java.io.IOException e) {
        LOG.warning("cannot clean spool directory " + spool + ": " + e.getMessage());
      }
    }
  }

  public String claimId() {
    return node + "/" + instance;
  }

  /**
   * Starts watching; fails with one line naming the API server when it cannot be reached or the
   * ServiceAccount may not list Checkpoints.
   */
  public NodeAgent start() {
    try {
      startInformer();
    } catch (KubernetesClientException e) {
      Throwable root = e;
      while (root.getCause() != null && root.getCause() != root) {
        root = root.getCause();
      }
      throw new IllegalStateException(
          "cannot watch Checkpoints through the API server at "
              + client.getConfiguration().getMasterUrl()
              + ": "
              + root.getClass().getSimpleName()
              + (root.getMessage() == null ? "" : " (" + root.getMessage() + ")"),
          e);
    }
    if (stager != null) {
      stager.start();
    }
    LOG.info("node agent " + claimId() + " watching checkpoints assigned to node " + node);
    return this;
  }

  private void startInformer() {
    informer =
        client
            .resources(Checkpoint.class)
            .inAnyNamespace()
            .withLabel(Labels.NODE, node)
            .inform(
                new ResourceEventHandler<>() {
                  @Override
                  public void onAdd(Checkpoint cr) {
                    submit(cr);
                  }

                  @Override
                  public void onUpdate(Checkpoint old, Checkpoint cr) {
                    submit(cr);
                  }

                  @Override
                  public void onDelete(Checkpoint cr, boolean unknown) {
                    CheckpointJob j = running.get(cr.getMetadata().getUid());
                    if (j != null) {
                      j.cancel();
                    }
                  }
                },
                30_000);
  }

  private void submit(Checkpoint cr) {
    events.submit(
        () -> {
          try {
            handle(cr);
          } catch (RuntimeException e) {
            LOG.log(Level.WARNING, key(cr) + ": " + e.getMessage(), e);
          }
        });
  }

  private void handle(Checkpoint seen) {
    String uid = seen.getMetadata().getUid();
    if (seen.getMetadata().getDeletionTimestamp() != null) {
      CheckpointJob j = running.get(uid);
      if (j != null) {
        j.cancel(); // the job removes the finalizer once everything is undone
      } else {
        cleanUpDeleted(seen);
      }
      return;
    }
    CheckpointStatus st = seen.getStatus();
    if (st == null || st.phase == null || st.phase.terminal() || running.containsKey(uid)) {
      return;
    }
    Map<String, String> ann = annotations(seen);
    String claim = ann.get(Labels.CLAIM);
    if (claim == null) {
      String accepted = ann.get(Labels.ACCEPTED_GENERATION);
      if (accepted == null) {
        return; // not dispatched yet
      }
      if (!accepted.equals(String.valueOf(seen.getMetadata().getGeneration()))) {
        return; // edited after acceptance: the operator fails it, nothing to run
      }
      Checkpoint claimed = claim(seen);
      if (claimed == null) {
        return;
      }
      StatusWriter w = writer(claimed);
      CheckpointJob job =
          new CheckpointJob(
              claimed,
              w,
              stores,
              processes,
              dumper,
              new PodCheck(client, node),
              node,
              () -> finished(uid, claimed));
      running.put(uid, job);
      Thread t = new Thread(job, "stasis-checkpoint-" + claimed.getMetadata().getName());
      t.setDaemon(true);
      t.start();
    } else if (!claim.equals(claimId()) && claim.startsWith(node + "/")) {
      recover(seen);
    }
  }

  /** Claims under optimistic locking; null when someone else changed it first. */
  private Checkpoint claim(Checkpoint seen) {
    // The informer's object is shared with its cache: change a copy.
    Checkpoint cr = client.getKubernetesSerialization().clone(seen);
    Map<String, String> ann = new HashMap<>(annotations(cr));
    ann.put(Labels.CLAIM, claimId());
    cr.getMetadata().setAnnotations(ann);
    List<String> fin =
        new ArrayList<>(
            cr.getMetadata().getFinalizers() == null
                ? List.of()
                : cr.getMetadata().getFinalizers());
    if (!fin.contains(Labels.AGENT_FINALIZER)) {
      fin.add(Labels.AGENT_FINALIZER);
    }
    cr.getMetadata().setFinalizers(fin);
    try {
      return client.resource(cr).update();
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409 || e.getCode() == 404) {
        LOG.info(key(cr) + ": changed while claiming, will look again");
        return null;
      }
      throw e;
    }
  }

  private void finished(String uid, Checkpoint cr) {
    running.remove(uid);
    Checkpoint now = writer(cr).read();
    if (now != null && now.getMetadata().getDeletionTimestamp() != null) {
      cleanUpDeleted(now);
    }
  }

  /**
   * A deleted Checkpoint that is not running here: delete the stored images if asked to, then
   * release the finalizer.
   */
  private void cleanUpDeleted(Checkpoint cr) {
    List<String> fin = cr.getMetadata().getFinalizers();
    if (fin == null || !fin.contains(Labels.AGENT_FINALIZER)) {
      return;
    }
    CheckpointStatus st = cr.getStatus();
    if (st != null
        && st.phase == Phase.Completed
        && cr.getSpec().effectiveDeletionPolicy() == CheckpointSpec.DeletionPolicy.Delete) {
      for (CheckpointStatus.ContainerRef ref : st.containers) {
        try (CheckpointStore s = stores.open(cr, ref.name)) {
          CheckpointJob.removeAll(s);
        } catch (StorageException e) {
          LOG.warning(key(cr) + ": cannot delete stored images yet: " + e.getMessage());
          return; // keep the finalizer; the informer's resync retries
        }
      }
      LOG.info(key(cr) + ": deletionPolicy Delete: stored images removed");
    }
    try {
      client
          .resources(Checkpoint.class)
          .inNamespace(cr.getMetadata().getNamespace())
          .withName(cr.getMetadata().getName())
          .edit(
              c -> {
                List<String> f = new ArrayList<>(c.getMetadata().getFinalizers());
                f.remove(Labels.AGENT_FINALIZER);
                c.getMetadata().setFinalizers(f);
                return c;
              });
    } catch (KubernetesClientException e) {
      if (e.getCode() != 404) {
        throw e;
      }
    }
  }

  /**
   * Claimed by an earlier instance of this agent that is gone. Never dump again: report the stored
   * result if it is complete, otherwise undo and fail.
   */
  private void recover(Checkpoint cr) {
    CheckpointStatus st = cr.getStatus();
    StatusWriter w = writer(cr);
    long size = 0;
    boolean complete = !st.containers.isEmpty();
    for (CheckpointStatus.ContainerRef ref : st.containers) {
      try (CheckpointStore s = stores.open(cr, ref.name)) {
        List<CheckpointStore.Listing> l = s.list();
        boolean ok = l.size() == 1 && l.get(0).complete();
        if (ok) {
          size += l.get(0).size();
        } else {
          complete = false;
        }
      } catch (StorageException e) {
        complete = false;
      }
    }
    if (complete) {
      try {
        w.transition(
            Transition.to(
                    Phase.Completed,
                    Reason.Completed,
                    "completed by a previous instance of the node agent; result found in the store")
                .location(stores.location(cr))
                .sizeBytes(size));
      } catch (StorageException e) {
        throw new IllegalStateException(e);
      }
      return;
    }
    for (CheckpointStatus.ContainerRef ref : st.containers) {
      try {
        CgroupFreezer.Frozen f = CgroupFreezer.thawOnly(processes.resolve(ref.containerID));
        f.thaw();
      } catch (IOException | IllegalArgumentException e) {
        LOG.info(key(cr) + ": container " + ref.name + " not found to thaw: " + e.getMessage());
      }
      try (CheckpointStore s = stores.open(cr, ref.name)) {
        CheckpointJob.removeAll(s);
      } catch (StorageException e) {
        LOG.warning(key(cr) + ": cannot remove partial images: " + e.getMessage());
      }
    }
    w.transition(
        Transition.failed(
            Reason.AgentRestarted,
            "the node agent restarted during the dump; partial images removed and the workload"
                + " thawed; create a new Checkpoint"));
  }

  private StatusWriter writer(Checkpoint cr) {
    return new StatusWriter(client, cr.getMetadata().getNamespace(), cr.getMetadata().getName());
  }

  private static Map<String, String> annotations(Checkpoint cr) {
    return cr.getMetadata().getAnnotations() == null ? Map.of() : cr.getMetadata().getAnnotations();
  }

  private static String key(Checkpoint cr) {
    return cr.getMetadata().getNamespace() + "/" + cr.getMetadata().getName();
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /** True while a dump of the given Checkpoint UID runs here. */
  public boolean isRunning(String uid) {
    return running.containsKey(uid);
  }

  @Override
  public void close() {
    if (informer != null) {
      informer.close();
    }
    running.values().forEach(CheckpointJob::cancel);
    events.shutdownNow();
    if (stager != null) {
      stager.close();
    }
  }
}
