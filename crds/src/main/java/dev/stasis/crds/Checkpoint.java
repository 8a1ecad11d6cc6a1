package dev.stasis.crds;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * A request to checkpoint one pod's containers into CRIU-format images.
 *
 * <p>The spec is immutable once the API server accepted it (CEL rule on {@link CheckpointSpec});
 * the operator and the agent additionally refuse to act on a generation other than the accepted one
 * ({@link Labels#ACCEPTED_GENERATION}), because not every API server evaluates CEL.
 */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("ckpt")
@AdditionalPrinterColumn(
    name = "Pod",
    jsonPath = ".spec.podName",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Phase",
    jsonPath = ".status.phase",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Size",
    jsonPath = ".status.sizeBytes",
    type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
public class Checkpoint extends CustomResource<CheckpointSpec, CheckpointStatus>
    implements Namespaced {
  public static final String GROUP = "stasis.dev";
  public static final String VERSION = "v1alpha1";
}
