package dev.stasis.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stasis.images.DirectoryImageSink;
import dev.stasis.testing.Crit;
import dev.stasis.testing.Exec;
import dev.stasis.testing.RuncContainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A container in its pod's network namespace, as Kubernetes runs every container: the namespace is
 * the sandbox's (here pinned by {@code ip netns add}, as CRI-O pins it, or held by a pause process,
 * as containerd's sandbox holds it), with a veth end to the host and an address on it, and the
 * container joins it by path. The agent's pod checkpoint declares it external, as {@code runc
 * checkpoint} does, instead of carrying the old pod's devices; runc restore, given the new pod's
 * namespace by path, puts the restored container there, and it goes on. Kill mode's pre-freeze
 * check takes the same decision: a device of the pod's namespace that the dump could not carry (a
 * macvlan where the kernel has it) does not refuse the container, while the same namespace as a
 * container's own does.
 */
class PodNetnsIT {
  private static final String COUNTER = "i=0; while :; do read -t 0.1 x; i=$((i+1)); echo $i; done";

  @TempDir Path work;
  private final List<String> netnses = new ArrayList<>();
  private final List<String> links = new ArrayList<>();

  @AfterEach
  void cleanUp() throws Exception {
    delete(netnses, links);
  }

  /** Deletes what {@link #sandbox(boolean, List, List)} made. */
  static void delete(List<String> netnses, List<String> links) {
    for (String l : links) {
      Exec.run(Duration.ofSeconds(10), List.of("ip", "link", "del", l));
    }
    for (String n : netnses) {
      Exec.run(Duration.ofSeconds(10), List.of("ip", "netns", "del", n));
    }
  }

  @Test
  void theSpecsNamespaceIsDeclaredExternalAndTheCopyJoinsTheNewPods() throws Exception {
    Path sandbox = sandbox(true);
    try (RuncContainer c = RuncContainer.startInNetns(work, COUNTER, sandbox)) {
      assertEquals(inode(sandbox), netnsOf(c.hostPid()), "the container is in the pod's netns");
      Path images = work.resolve("images");
      ContainerRootfs rootfs =
          new ContainerRootfs(
              Path.of("/proc/1/root"), List.of(c.bundle().resolve("config.json").toString()), null);
      PodDump.Member m =
          new PodDump.Member(
              "app",
              ContainerProcesses.host().resolve(c.containerId()),
              new TrackingSink(DirectoryImageSink.open(images), () -> false, () -> {}),
              x -> {},
              rootfs);
      PodDump.run(List.of(m), true, ProcessDumper.ENGINE, Duration.ofSeconds(10), () -> false);
      assertExternalOnly(images);
      restoreIntoANewPod(c, images);
    }
  }

  @Test
  void withoutASpecAPauseProcessInTheNamespaceMakesItThePods() throws Exception {
    Path sandbox = sandbox(true);
    try (RuncContainer c = RuncContainer.startInNetns(work, COUNTER, sandbox);
        AutoCloseable pause = pause(sandbox)) {
      Path images = work.resolve("images");
      PodDump.Member m =
          new PodDump.Member(
              "app",
              ContainerProcesses.host().resolve(c.containerId()),
              new TrackingSink(DirectoryImageSink.open(images), () -> false, () -> {}),
              x -> {});
      PodDump.run(List.of(m), true, ProcessDumper.ENGINE, Duration.ofSeconds(10), () -> false);
      assertExternalOnly(images);
      int lines = c.lines();
      PodDumpIT.await(() -> c.lines() > lines + 2, "the original keeps running");
    }
  }

  /**
   * Kill mode: the pre-freeze restorability check takes the dump's decision that the sandbox
   * namespace is the pod's, so a CNI device the dump could not carry (a macvlan here) does not
   * refuse the checkpoint; the dump declares the namespace external and the killed container
   * restores into a new pod's namespace.
   */
  @Test
  void killModeIsNotRefusedForADeviceInThePodsNamespace() throws Exception {
    Path sandbox = sandbox(false);
    Refused mv = unsupportedDevice(sandbox);
    try (RuncContainer c = RuncContainer.startInNetns(work, COUNTER, sandbox)) {
      Path images = work.resolve("images");
      ContainerRootfs rootfs =
          new ContainerRootfs(
              Path.of("/proc/1/root"), List.of(c.bundle().resolve("config.json").toString()), null);
      PodDump.Member m =
          new PodDump.Member(
              "app",
              ContainerProcesses.host().resolve(c.containerId()),
              new TrackingSink(DirectoryImageSink.open(images), () -> false, () -> {}),
              x -> {},
              rootfs);
      PodDump.run(List.of(m), false, ProcessDumper.ENGINE, Duration.ofSeconds(10), () -> false);
      assertExternalOnly(images);
      assertTrue(
          Exec.ok(Duration.ofSeconds(10), List.of("ip", "-n", name(sandbox), "link"))
              .contains(mv.name()),
          "the pod's " + mv.kind() + " stays with its namespace");
      PodDumpIT.await(() -> !c.alive(), "kill mode killed the container");
      restoreIntoANewPod(c, images);
    }
  }

  /**
   * The same namespace without a spec naming it and without a process outside the container in it
   * is the container's own: its macvlan is refused before the freeze, by name and kind, and the
   * container runs on.
   */
  @Test
  void withoutAPodTheDeviceIsStillRefusedByName() throws Exception {
    Path sandbox = sandbox(false);
    Refused mv = unsupportedDevice(sandbox);
    try (RuncContainer c = RuncContainer.startInNetns(work, COUNTER, sandbox)) {
      PodDump.Member m =
          new PodDump.Member(
              "app",
              ContainerProcesses.host().resolve(c.containerId()),
              new TrackingSink(
                  DirectoryImageSink.open(work.resolve("images")), () -> false, () -> {}),
              x -> {});
      PodDump.NotRestorableException e =
          assertThrows(
              PodDump.NotRestorableException.class,
              () ->
                  PodDump.run(
                      List.of(m),
                      false,
                      ProcessDumper.ENGINE,
                      Duration.ofSeconds(10),
                      () -> false));
      assertTrue(
          e.getMessage().contains(mv.name() + " (kind " + mv.kind()), mv + ": " + e.getMessage());
      assertTrue(c.alive(), "nobody killed");
      int lines = c.lines();
      PodDumpIT.await(() -> c.lines() > lines + 2, "the container runs on");
    }
  }

  /**
   * The new pod: {@code c} deleted, restored by runc from {@code images} into a sandbox namespace
   * of its own, which the copy must join; its counter goes on from where the dump left it.
   */
  private void restoreIntoANewPod(RuncContainer c, Path images) throws Exception {
    int before = c.lines();
    c.delete();
    Path next = sandbox(false);
    c.useNetns(next);
    int pid = c.restore(images);
    assertEquals(inode(next), netnsOf(pid), "the copy is in the new pod's netns");
    PodDumpIT.await(() -> restoredCount(c) > before, "the restored counter goes on past " + before);
  }

  /** netns-ID.img holds only the external key; no device, address or route of the old pod. */
  private static void assertExternalOnly(Path images) throws Exception {
    List<Path> netns;
    try (var l = Files.list(images)) {
      netns = l.filter(p -> p.getFileName().toString().startsWith("netns-")).toList();
    }
    assertEquals(1, netns.size(), "one netns image: " + netns);
    for (Crit.Version v : Crit.Version.values()) {
      JsonNode e = Crit.entries(Crit.decode(v, netns.get(0))).get(0);
      assertEquals("extRootNetNS", e.path("ext_key").asText(), v + ": " + e);
    }
    try (var l = Files.list(images)) {
      List<String> dev =
          l.map(p -> p.getFileName().toString())
              .filter(n -> n.startsWith("netdev-") || n.startsWith("ifaddr-"))
              .toList();
      assertTrue(dev.isEmpty(), "no devices of the old pod: " + dev);
    }
  }

  /**
   * A pinned network namespace as a pod sandbox: lo up; with {@code veth}, a veth end to the host
   * with an address, as a CNI plugin leaves it.
   */
  private Path sandbox(boolean veth) throws Exception {
    return sandbox(veth, netnses, links);
  }

  /**
   * {@link #sandbox(boolean)} for other tests: the namespace's name is added to {@code netnses}, a
   * veth's host end to {@code links}, for the caller to delete ({@link #delete}).
   */
  static Path sandbox(boolean veth, List<String> netnses, List<String> links) throws Exception {
    byte[] r = new byte[4];
    new SecureRandom().nextBytes(r);
    String id = HexFormat.of().formatHex(r);
    String name = "stasis-sbx-" + id;
    Exec.ok(Duration.ofSeconds(10), List.of("ip", "netns", "add", name));
    netnses.add(name);
    Exec.ok(Duration.ofSeconds(10), List.of("ip", "-n", name, "link", "set", "lo", "up"));
    if (veth) {
      String host = "svh" + id;
      String in = "svp" + id;
      Exec.ok(
          Duration.ofSeconds(10),
          List.of("ip", "link", "add", host, "type", "veth", "peer", "name", in));
      links.add(host);
      Exec.ok(Duration.ofSeconds(10), List.of("ip", "link", "set", in, "netns", name));
      Exec.ok(
          Duration.ofSeconds(10),
          List.of("ip", "-n", name, "addr", "add", "10.217.0.2/24", "dev", in));
      Exec.ok(Duration.ofSeconds(10), List.of("ip", "-n", name, "link", "set", in, "up"));
      Exec.ok(Duration.ofSeconds(10), List.of("ip", "link", "set", host, "up"));
    }
    return Path.of("/run/netns", name);
  }

  /**
   * A device the dump refuses, in a sandbox namespace: its name and kind as the refusal names it.
   */
  private record Refused(String name, String kind) {}

  /**
   * A device in {@code netns} that the dump cannot carry: a macvlan, as a macvlan CNI plugin leaves
   * it, made on a host device (one end of a host-only veth pair, removed after the test) and moved
   * in. A kernel without macvlan (a module not built, as ipvlan and dummy are not in this one) gets
   * an ipvlan, and without that a veth pair with both ends in the namespace, which needs only what
   * {@link #sandbox} needs and is refused as well (its peer is not in another namespace).
   */
  private Refused unsupportedDevice(Path netns) throws Exception {
    String id = name(netns).substring("stasis-sbx-".length());
    String parent = "smp" + id;
    String dev = "smv" + id;
    Duration t = Duration.ofSeconds(10);
    Exec.ok(t, List.of("ip", "link", "add", parent, "type", "veth", "peer", "name", "smq" + id));
    links.add(parent);
    for (String kind : List.of("macvlan", "ipvlan")) {
      if (Exec.run(t, List.of("ip", "link", "add", "link", parent, "name", dev, "type", kind))
          .ok()) {
        Exec.ok(t, List.of("ip", "link", "set", dev, "netns", name(netns)));
        return new Refused(dev, kind);
      }
    }
    Exec.ok(
        t,
        List.of(
            "ip",
            "-n",
            name(netns),
            "link",
            "add",
            dev,
            "type",
            "veth",
            "peer",
            "name",
            "smw" + id));
    return new Refused(dev, "veth");
  }

  private static String name(Path netns) {
    return netns.getFileName().toString();
  }

  /** A pause process holding {@code netns}, as a containerd sandbox does. */
  private static AutoCloseable pause(Path netns) throws Exception {
    Process p =
        new ProcessBuilder("ip", "netns", "exec", netns.getFileName().toString(), "sleep", "100000")
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    PodDumpIT.await(
        () -> netnsOf((int) p.pid()).equals(inode(netns)), "the pause process joined the netns");
    return () -> {
      p.destroyForcibly();
      p.waitFor();
    };
  }

  private static String inode(Path netns) throws Exception {
    return "net:[" + Files.getAttribute(netns, "unix:ino") + "]";
  }

  private static String netnsOf(int pid) {
    try {
      return Files.readSymbolicLink(Path.of("/proc/" + pid + "/ns/net")).toString();
    } catch (Exception e) {
      return "gone";
    }
  }

  private static int restoredCount(RuncContainer c) throws Exception {
    Path log = c.restoredLog();
    if (!Files.exists(log)) {
      return -1;
    }
    List<String> lines = Files.readAllLines(log);
    for (int i = lines.size() - 1; i >= 0; i--) {
      String l = lines.get(i).strip();
      if (l.matches("\\d+")) {
        return Integer.parseInt(l);
      }
    }
    return -1;
  }
}
