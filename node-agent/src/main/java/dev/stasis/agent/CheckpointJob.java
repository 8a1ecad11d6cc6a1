package dev.stasis.agent;

import dev.stasis.crds.Checkpoint;
import dev.stasis.crds.CheckpointStatus;
import dev.stasis.crds.Labels;
import dev.stasis.crds.Phase;
import dev.stasis.crds.PodTemplates;
import dev.stasis.crds.Reason;
import dev.stasis.crds.Transition;
import dev.stasis.dump.DumpException;
import dev.stasis.dump.LiveCopy;
import dev.stasis.storage.CheckpointStore;
import dev.stasis.storage.StorageException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One claimed Checkpoint on this node: re-read the pod (never trusting the IDs in the status),
 * resolve its containers, dump them as one cut ({@link PodDump}), each into its own image set in
 * the store, and report. Everything it started is undone on failure or cancellation: cgroups
 * thawed, the engine detached from the workload, partial uploads and already stored containers of
 * this checkpoint deleted, so that a checkpoint is either complete or absent.
 */
final class CheckpointJob implements Runnable {
  private static final Logger LOG = Logger.getLogger(CheckpointJob.class.getName());

  private final Checkpoint cr;
  private final StatusWriter status;
  private final StoreResolver stores;
  private final ContainerProcesses processes;
  private final ProcessDumper dumper;
  private final PodCheck pods;
  private final String node;
  private final Instant deadline;
  private final Runnable onDone;
  private volatile boolean deleted;

  /** The status ended under us (operator timeout, spec edited): stop and undo. */
  private volatile boolean abandoned;

  CheckpointJob(
      Checkpoint cr,
      StatusWriter status,
      StoreResolver stores,
      ContainerProcesses processes,
      ProcessDumper dumper,
      PodCheck pods,
      String node,
      Runnable onDone) {
    this.cr = cr;
    this.pods = pods;
    this.node = node;
    this.status = status;
    this.stores = stores;
    this.processes = processes;
    this.dumper = dumper;
    this.onDone = onDone;
    String at = cr.getMetadata().getAnnotations().get(Labels.DISPATCHED_AT);
    Instant start = at == null ? Instant.now() : Instant.parse(at);
    this.deadline = start.plusSeconds(cr.getSpec().effectiveTimeoutSeconds());
  }

  /** The Checkpoint is being deleted: stop as soon as possible and leave nothing behind. */
  void cancel() {
    deleted = true;
  }

  /**
   * Deleted, abandoned, or past its timeoutSeconds from dispatch: the freeze deadline in the agent.
   */
  boolean cancelled() {
    return deleted || abandoned || Instant.now().isAfter(deadline);
  }

  /** Writes a non-final status; if the checkpoint already ended, the dump is abandoned. */
  private void report(boolean written) {
    if (!written) {
      abandoned = true;
    }
  }

  private String who() {
    return cr.getMetadata().getNamespace() + "/" + cr.getMetadata().getName();
  }

  @Override
  public void run() {
    List<CheckpointStore> opened = new ArrayList<>();
    boolean complete = false;
    try {
      List<CheckpointStatus.ContainerRef> refs;
      String podUid;
      // What a Restore needs to make a new pod of this one, from the pod the agent itself read.
      io.fabric8.kubernetes.api.model.PodTemplateSpec template;
      try {
        io.fabric8.kubernetes.api.model.Pod pod = pods.read(cr);
        refs = PodCheck.containers(cr, pod, node);
        podUid = pod.getMetadata().getUid();
        template = PodTemplates.sanitize(pod);
      } catch (PodCheck.MismatchException e) {
        fail(e.reason(), e.getMessage());
        return;
      }
      try {
        stores.checkAllowed(cr);
      } catch (StorageException e) {
        fail(Reason.StorageNotAllowed, e.getMessage());
        return;
      }
      if (!status.transition(
          Transition.to(Phase.Running, Reason.Claimed, "claimed by the node agent on " + node)
              .containers(refs)
              .podTemplate(template))) {
        return;
      }
      String location = stores.location(cr);
      List<PodDump.Result> results;
      // container name -> the id of the checkpoint its images go to
      Map<String, String> checkpointIds = new java.util.HashMap<>();
      List<PodDump.Member> members = new ArrayList<>();
      for (CheckpointStatus.ContainerRef ref : refs) {
        ContainerProcesses.Container c;
        try {
          c = processes.resolve(ref.containerID);
        } catch (java.io.IOException | IllegalArgumentException e) {
          members.forEach(m -> m.sink().close()); // nothing was written through them
          fail(Reason.ProcessNotFound, "container '" + ref.name + "': " + e.getMessage());
          return;
        }
        CheckpointStore store = stores.open(cr, ref.name);
        opened.add(store);
        String name = ref.name;
        TrackingSink[] self = new TrackingSink[1];
        TrackingSink sink =
            new TrackingSink(
                store.newCheckpoint(),
                this::cancelled,
                () ->
                    report(
                        status.transition(
                            Transition.to(
                                    Phase.Uploading,
                                    Reason.Uploading,
                                    "container '" + name + "': finishing upload")
                                .container(
                                    name,
                                    CheckpointStatus.ContainerPhase.Uploading,
                                    self[0].bytes()))));
        self[0] = sink;
        if (sink.checkpointId() != null) {
          checkpointIds.put(name, sink.checkpointId());
        }
        sink.recordMetadata(
            Map.of(
                "k8s.namespace", cr.getMetadata().getNamespace(),
                "k8s.checkpoint", cr.getMetadata().getName(),
                "k8s.checkpoint.uid", cr.getMetadata().getUid(),
                "k8s.pod", cr.getSpec().getPodName(),
                "k8s.pod.uid", String.valueOf(podUid),
                "k8s.container", name,
                // the stored checkpoint alone suffices to make the pod again (Restore from uri)
                "k8s.pod.template", PodTemplates.toJson(template)));
        members.add(
            new PodDump.Member(
                name,
                c,
                sink,
                msg ->
                    report(
                        status.progress(
                            Transition.to(
                                    Phase.Running,
                                    Reason.Dumping,
                                    "container '" + name + "': " + msg)
                                .container(
                                    name, CheckpointStatus.ContainerPhase.Dumping, sink.bytes()))),
                // the root diff, OCI spec and config.dump: the archive layout (issue 12)
                ContainerRootfs.host(image(template, name))));
      }
      // One cut: a child that has exited and is not reaped yet is dumped as the dead task it
      // is (as CRIU does), so no state of the pod is transient for the engine.
      try {
        results =
            PodDump.run(
                members,
                cr.getSpec().effectiveLeaveRunning(),
                dumper,
                Duration.ofSeconds(10),
                this::cancelled,
                cr.getSpec().effectiveHoldFinalFreeze() ? new FinalFreezeHold() : null);
      } finally {
        for (PodDump.Member m : members) {
          m.sink().close();
        }
      }
      CheckpointStatus.Durations total = new CheckpointStatus.Durations();
      total.freezeMillis = 0L;
      total.frozenMillis = 0L;
      total.dumpMillis = 0L;
      total.uploadMillis = 0L;
      long bytes = 0;
      List<String> warnings = new ArrayList<>();
      for (PodDump.Result r : results) {
        bytes += r.bytes();
        // one freeze of all containers at once; frozen: until the last container was let go
        total.freezeMillis = Math.max(total.freezeMillis, r.freezeMillis());
        total.frozenMillis = Math.max(total.frozenMillis, r.frozenMillis());
        total.dumpMillis += r.dumpMillis();
        total.uploadMillis += r.uploadMillis();
        r.warnings().forEach(w -> warnings.add("container '" + r.name() + "': " + w));
      }
      complete = true;
      boolean written =
          status.transition(
              Transition.to(
                      Phase.Completed,
                      Reason.Completed,
                      "stored "
                          + bytes
                          + " bytes of "
                          + refs.size()
                          + " container(s) at "
                          + location
                          + (warnings.isEmpty()
                              ? ""
                              : "; not restorable yet, see condition Restorable"))
                  .location(location)
                  .sizeBytes(bytes)
                  .durations(total)
                  .checkpointIds(checkpointIds)
                  // the cut: the moment every container's cgroup was frozen (after any live copy
                  // or hold, which the pod ran through)
                  .frozenAt(results.get(0).cutAt())
                  .restorability(warnings));
      if (!written) {
        // The checkpoint ended under us (e.g. the operator timed it out) and says Failed. The
        // workload still runs in leave-running mode, so the images go, as for any other failure;
        // in kill mode they are all that is left of the workload and stay.
        if (cr.getSpec().effectiveLeaveRunning()) {
          complete = false;
          LOG.info(who() + ": ended before Completed could be written; deleting the images");
        } else {
          LOG.warning(
              who()
                  + ": ended before Completed could be written; the workload was killed, so its"
                  + " images stay at "
                  + location);
        }
      }
    } catch (TrackingSink.CancelledException | LiveCopy.Cancelled e) {
      fail(
          deleted ? Reason.Cancelled : Reason.TimedOut,
          deleted
              ? "cancelled: the Checkpoint was deleted; the workload was released unharmed"
              : "did not finish within timeoutSeconds=" + cr.getSpec().effectiveTimeoutSeconds());
    } catch (PodDump.NotRestorableException e) {
      try {
        status.transition(
            Transition.failed(Reason.NotRestorable, e.getMessage()).restorability(e.warnings()));
      } catch (RuntimeException x) {
        LOG.log(Level.WARNING, who() + ": could not report " + e.getMessage(), x);
      }
    } catch (PodDump.RefusedException | DumpException e) {
      fail(
          cause(e) instanceof TrackingSink.CancelledException
              ? Reason.Cancelled
              : Reason.DumpFailed,
          e.getMessage());
    } catch (StorageException e) {
      fail(Reason.StorageFailed, e.getMessage());
    } catch (Exception e) {
      LOG.log(Level.WARNING, who() + ": dump failed", e);
      fail(Reason.DumpFailed, e.getClass().getSimpleName() + ": " + e.getMessage());
    } finally {
      if (!complete) {
        for (CheckpointStore s : opened) {
          try {
            removeAll(s);
          } catch (StorageException e) {
            LOG.warning(
                who() + ": could not remove partial images at " + s.uri() + ": " + e.getMessage());
          }
        }
      }
      opened.forEach(CheckpointStore::close);
      onDone.run();
    }
  }

  /**
   * {@code spec.holdFinalFreeze}: reports ParentStored once every parent set is stored, then reads
   * the Checkpoint until it carries {@code stasis.dev/final-freeze: go}. The pod dump asks the
   * job's cancellation between reads, so deletion, timeoutSeconds and a status ended under the
   * agent (operator rollback) end the hold; a Checkpoint that is gone or ended is found here too.
   */
  private final class FinalFreezeHold implements PodDump.Hold {
    @Override
    public void parentsStored(PodDump.ParentSets parents) {
      String at = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
      // Still ParentStored when a container (or every one) has no parent set: the target skips
      // it when pre-staging and fetches it whole after the cut, so the migration goes on.
      String summary = parents.summary();
      report(
          status.transition(
              Transition.to(
                      Phase.Running,
                      Reason.ParentStored,
                      summary
                          + "; the pod runs until "
                          + Labels.FINAL_FREEZE
                          + ": "
                          + Labels.FINAL_FREEZE_GO)
                  .parentStored(at, parents.bytes(), summary)));
      LOG.info(who() + ": " + summary + "; holding the cut");
    }

    @Override
    public boolean go() {
      Checkpoint now;
      try {
        now = status.read();
      } catch (RuntimeException e) {
        return false; // the API server is away: ask again, bounded by timeoutSeconds
      }
      if (now == null) {
        deleted = true;
        return false;
      }
      if (now.getStatus() != null
          && now.getStatus().phase != null
          && now.getStatus().phase.terminal()) {
        abandoned = true;
        return false;
      }
      return Labels.finalFreezeGo(now);
    }
  }

  /** The image of container {@code name} in the pod's spec, or null. */
  static String image(io.fabric8.kubernetes.api.model.PodTemplateSpec template, String name) {
    if (template == null || template.getSpec() == null) {
      return null;
    }
    for (var c : template.getSpec().getContainers()) {
      if (name.equals(c.getName())) {
        return c.getImage();
      }
    }
    return null;
  }

  /**
   * Deletes whatever a checkpoint left at this store: objects and pending multipart uploads. The
   * engine usually aborted its sink already; then there is nothing to do.
   */
  static void removeAll(CheckpointStore s) throws StorageException {
    if (!s.objectKeys().isEmpty() || !s.pendingUploads().isEmpty()) {
      s.delete();
    }
  }

  private static Throwable cause(Throwable e) {
    Throwable c = e;
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    return c;
  }

  private void fail(Reason r, String message) {
    try {
      status.transition(Transition.failed(r, message));
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, who() + ": could not report failure " + r + ": " + message, e);
    }
  }
}
