package dev.stasis.crds;

import java.util.List;

/**
 * One observed step of a checkpoint: the phase it is in now, why, and any facts learnt on the way
 * (null facts leave the status field as it was). Input of {@link StatusAggregator}.
 */
public final class Transition {
  final Phase phase;
  final Reason reason;
  final String message;
  String nodeName;
  String podUID;
  List<CheckpointStatus.ContainerRef> containers;
  String location;
  Long sizeBytes;
  CheckpointStatus.Durations durations;
  String container;
  CheckpointStatus.ContainerPhase containerPhase;
  Long containerBytes;
  List<String> restorabilityWarnings;
  java.util.Map<String, String> checkpointIds;
  io.fabric8.kubernetes.api.model.PodTemplateSpec podTemplate;
  String frozenAt;
  String parentStoredAt;
  Long parentBytes;
  String parentSummary;

  private Transition(Phase phase, Reason reason, String message) {
    this.phase = phase;
    this.reason = reason;
    this.message = message;
  }

  public static Transition to(Phase phase, Reason reason, String message) {
    return new Transition(phase, reason, message);
  }

  public static Transition failed(Reason reason, String message) {
    return new Transition(Phase.Failed, reason, message);
  }

  public Transition node(String nodeName, String podUID) {
    this.nodeName = nodeName;
    this.podUID = podUID;
    return this;
  }

  public Transition containers(List<CheckpointStatus.ContainerRef> containers) {
    this.containers = containers;
    return this;
  }

  public Transition location(String location) {
    this.location = location;
    return this;
  }

  public Transition sizeBytes(long sizeBytes) {
    this.sizeBytes = sizeBytes;
    return this;
  }

  public Transition durations(CheckpointStatus.Durations durations) {
    this.durations = durations;
    return this;
  }

  /**
   * Progress of one container of a multi-container checkpoint: its step and bytes so far. The pod's
   * phase is then derived from every container's step (Running until all of them reached
   * Uploading), so one container finishing early never makes another's progress a step back.
   */
  public Transition container(String name, CheckpointStatus.ContainerPhase phase, Long bytes) {
    this.container = name;
    this.containerPhase = phase;
    this.containerBytes = bytes;
    return this;
  }

  /**
   * The engine's restorability warnings for these images: empty means a runtime can restore them
   * (condition Restorable=True), otherwise Restorable=False with the warnings as message.
   */
  /** Each container's stored checkpoint id (by container name), recorded on completion. */
  public Transition checkpointIds(java.util.Map<String, String> ids) {
    this.checkpointIds = java.util.Map.copyOf(ids);
    return this;
  }

  public Transition restorability(List<String> warnings) {
    this.restorabilityWarnings = List.copyOf(warnings);
    return this;
  }

  /** The sanitized pod ({@link PodTemplates#sanitize}) a Restore recreates. */
  public Transition podTemplate(io.fabric8.kubernetes.api.model.PodTemplateSpec template) {
    this.podTemplate = template;
    return this;
  }

  /** When the cut froze the pod. */
  public Transition frozenAt(java.time.Instant at) {
    this.frozenAt = at.truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
    return this;
  }

  /**
   * Every container's parent image set (pre-copy, pod running) is stored: {@code at} (RFC 3339) and
   * their total bytes. Sets {@code parentStoredAt} and the condition {@code ParentStored}.
   */
  public Transition parentStored(String at, long bytes) {
    return parentStored(at, bytes, null);
  }

  /**
   * As {@link #parentStored(String, long)}, with {@code summary} (one line, null for the plain
   * bytes) saying which containers have a parent set and which do not (a container without a live
   * copy has none: its pages are all copied at the cut), as the condition's message says it.
   */
  public Transition parentStored(String at, long bytes, String summary) {
    this.parentStoredAt = java.time.Instant.parse(at).toString();
    this.parentBytes = bytes;
    this.parentSummary = summary;
    return this;
  }

  public Phase phase() {
    return phase;
  }

  public Reason reason() {
    return reason;
  }

  public String message() {
    return message;
  }
}
