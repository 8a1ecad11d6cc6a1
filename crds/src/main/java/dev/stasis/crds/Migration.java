package dev.stasis.crds;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * Moves a pod to another node: a Checkpoint of it (leaveRunning, so the source keeps serving), a
 * Restore of that checkpoint on the target node, and only once the copy is Ready the source pod's
 * deletion. Any failure before that leaves the source running, deletes the copy and records why.
 */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("mig")
@AdditionalPrinterColumn(
    name = "Pod",
    jsonPath = ".spec.podName",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Target",
    jsonPath = ".spec.targetNode",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Phase",
    jsonPath = ".status.phase",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Downtime(ms)",
    jsonPath = ".status.downtimeMillis",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class Migration extends CustomResource<MigrationSpec, MigrationStatus>
    implements Namespaced {}
