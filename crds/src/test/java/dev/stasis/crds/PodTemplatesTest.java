package dev.stasis.crds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PodTemplatesTest {
  static Pod scheduledPod() {
    return new PodBuilder()
        .withNewMetadata()
        .withName("web")
        .withNamespace("shop")
        .withUid("uid-1")
        .withResourceVersion("42")
        .withLabels(Map.of("app", "web"))
        .withAnnotations(
            Map.of(
                "team",
                "checkout",
                PodTemplates.RESTORE_FROM_PREFIX + "app",
                "s3://b/old/app",
                PodTemplates.RESTORE_ANNOTATION,
                "shop/r1"))
        .addNewOwnerReference()
        .withKind("ReplicaSet")
        .withName("web-abc")
        .withUid("rs")
        .endOwnerReference()
        .endMetadata()
        .withNewSpec()
        .withNodeName("n1")
        .withPriority(1000)
        .withPreemptionPolicy("PreemptLowerPriority")
        .withPriorityClassName("high")
        .addNewContainer()
        .withName("app")
        .withImage("busybox:1.36")
        .addNewVolumeMount()
        .withName("data")
        .withMountPath("/data")
        .endVolumeMount()
        .addNewVolumeMount()
        .withName("kube-api-access-x1")
        .withMountPath("/var/run/secrets/kubernetes.io/serviceaccount")
        .endVolumeMount()
        .endContainer()
        .addNewEphemeralContainer()
        .withName("debugger")
        .withImage("busybox")
        .endEphemeralContainer()
        .addNewVolume()
        .withName("data")
        .withNewEmptyDir()
        .endEmptyDir()
        .endVolume()
        .addNewVolume()
        .withName("kube-api-access-x1")
        .withNewProjected()
        .addNewSource()
        .withNewServiceAccountToken()
        .withPath("token")
        .withExpirationSeconds(3607L)
        .endServiceAccountToken()
        .endSource()
        .endProjected()
        .endVolume()
        .endSpec()
        .withNewStatus()
        .withPhase("Running")
        .withPodIP("10.0.0.5")
        .endStatus()
        .build();
  }

  @Test
  void keepsTheWorkloadDropsTheInstance() {
    Pod pod = scheduledPod();
    PodTemplateSpec t = PodTemplates.sanitize(pod);
    assertNull(t.getMetadata().getName());
    assertNull(t.getMetadata().getUid());
    assertNull(t.getMetadata().getResourceVersion());
    assertTrue(
        t.getMetadata().getOwnerReferences() == null
            || t.getMetadata().getOwnerReferences().isEmpty());
    assertEquals(Map.of("app", "web"), t.getMetadata().getLabels());
    assertEquals(Map.of("team", "checkout"), t.getMetadata().getAnnotations());
    assertNull(t.getSpec().getNodeName());
    assertNull(t.getSpec().getPriority());
    assertNull(t.getSpec().getPreemptionPolicy());
    assertEquals("high", t.getSpec().getPriorityClassName());
    assertTrue(
        t.getSpec().getEphemeralContainers() == null
            || t.getSpec().getEphemeralContainers().isEmpty());
    assertEquals(1, t.getSpec().getVolumes().size());
    assertEquals("data", t.getSpec().getVolumes().get(0).getName());
    var c = t.getSpec().getContainers().get(0);
    assertEquals("busybox:1.36", c.getImage());
    assertEquals(1, c.getVolumeMounts().size(), "the token mount goes with its volume");
    assertEquals("n1", pod.getSpec().getNodeName(), "the pod read is not modified");
    assertEquals(2, pod.getSpec().getVolumes().size());
  }

  @Test
  void jsonRoundTrips() {
    PodTemplateSpec t = PodTemplates.sanitize(scheduledPod());
    assertEquals(t, PodTemplates.fromJson(PodTemplates.toJson(t)));
  }
}
