package dev.stasis.crds;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A request to bring a checkpoint back as a new pod: from a Completed Checkpoint of the same
 * namespace, or from a stored location with its credentials Secret and a pod template. The operator
 * creates the pod with {@code runtimeClassName} of the Stasis runtime and one annotation per
 * container naming its image set; the runtime wrapper on the node restores each container instead
 * of starting it (docs/restore.md).
 */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("rst")
@AdditionalPrinterColumn(
    name = "Checkpoint",
    jsonPath = ".spec.checkpointName",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Pod",
    jsonPath = ".status.podName",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Node",
    jsonPath = ".status.nodeName",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Phase",
    jsonPath = ".status.phase",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class Restore extends CustomResource<RestoreSpec, RestoreStatus> implements Namespaced {}
