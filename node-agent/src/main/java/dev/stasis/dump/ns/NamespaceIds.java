package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.linux.proc.NsLinks;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Namespace ids as CRIU numbers them: the agent's own namespaces get 1..8 in CRIU's probing order
 * (pid, net, ipc, uts, time, mnt, user, cgroup) and are inventory.root_ids; every other namespace a
 * dumped process is in gets the next free id when first seen, the same id for every process in it.
 * The first process seen in a namespace is the one its images are read through.
 */
public final class NamespaceIds {
  /** Kinds in CRIU's probing order; kind i of the agent gets id i + 1. */
  public static final List<String> KINDS = List.of(NsLinks.TYPES);

  /** Pass as the pid of {@link #ids} for the agent's own ids (inventory.root_ids). */
  public static final int ROOT = -1;

  /** A namespace of the tree that is not the agent's: its kind, image id, and a process in it. */
  public record Own(String kind, int id, int pid) {}

  private final Map<String, Integer> byInode = new HashMap<>();
  private final Map<Integer, Own> own = new LinkedHashMap<>();
  private int next = KINDS.size() + 1;
  private final CgroupSets cgroups = CgroupSets.host();

  public NamespaceIds() throws IOException {
    for (int i = 0; i < KINDS.size(); i++) {
      String link = link("self", KINDS.get(i));
      if (link != null) {
        byInode.put(link, i + 1);
      }
    }
  }

  /** The tree's cgroup sets (each thread's cg_set; cgroup.img). */
  public CgroupSets cgroups() {
    return cgroups;
  }

  /** Kinds of the tree's own namespaces, in probing order, each once. */
  public List<String> ownKinds() {
    Set<String> kinds = new LinkedHashSet<>();
    for (String k : KINDS) {
      for (Own o : own.values()) {
        if (o.kind().equals(k)) {
          kinds.add(k);
        }
      }
    }
    return List.copyOf(kinds);
  }

  /** Every namespace of the tree that is not the agent's, in the order first seen. */
  public List<Own> own() {
    return new ArrayList<>(own.values());
  }

  /** The ids entry of process {@code p} ({@link #ROOT}: the agent's own, for root_ids). */
  public TaskKobjIdsEntry ids(int objId, int p) throws IOException {
    int[] ns = new int[KINDS.size()];
    for (int i = 0; i < KINDS.size(); i++) {
      ns[i] = i + 1;
      String link = p == ROOT ? null : link(Integer.toString(p), KINDS.get(i));
      if (link == null) {
        continue;
      }
      Integer id = byInode.get(link);
      if (id == null) {
        if (KINDS.get(i).equals("user")) {
          // Another user namespace maps uids and capabilities: not handled (refused before the
          // freeze by ContainerImages.refuseUnsupported; this is the backstop).
          throw new DumpException("PID " + p + " is in another user namespace: not supported yet");
        }
        id = next++;
        byInode.put(link, id);
      }
      if (id != i + 1) {
        own.putIfAbsent(id, new Own(KINDS.get(i), id, p));
      }
      ns[i] = id;
    }
    return TaskKobjIdsEntry.newBuilder()
        .setVmId(objId)
        .setFilesId(objId)
        .setFsId(objId)
        .setSighandId(objId)
        .setPidNsId(ns[0])
        .setNetNsId(ns[1])
        .setIpcNsId(ns[2])
        .setUtsNsId(ns[3])
        .setTimeNsId(ns[4])
        .setMntNsId(ns[5])
        .setUserNsId(ns[6])
        .setCgroupNsId(ns[7])
        .build();
  }

  /** "pid:[4026531836]", or null where the kernel has no such namespace. */
  static String link(String p, String ns) throws IOException {
    return NsLinks.link(p, ns);
  }

  /** Whether process {@code pid} ("self" too) is in a {@code kind} namespace not the agent's. */
  static boolean differs(String pid, String kind) throws IOException {
    String own = link(pid, kind);
    return own != null && !own.equals(link("self", kind));
  }
}
