package dev.stasis.dump;

import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.linux.proc.NsLinks;
import java.io.IOException;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Namespace ids as CRIU numbers them: the agent's own namespaces get 1..8 in probing order ({@link
 * NsLinks#TYPES}) and are inventory.root_ids; every other namespace a dumped process is in gets the
 * next free id when first seen, the same id for every process in it.
 */
final class NamespaceIds {
  /** The process to ask {@link #ids} about for the agent's own ids (inventory.root_ids). */
  static final int ROOT = -1;

  private static final String[] TYPES = NsLinks.TYPES;

  private final Map<String, Integer> byLink = new HashMap<>();
  private final Set<String> own = new LinkedHashSet<>();
  private int next = TYPES.length + 1;

  NamespaceIds() throws IOException {
    for (int i = 0; i < TYPES.length; i++) {
      String link = NsLinks.link("self", TYPES[i]);
      if (link != null) {
        byLink.put(link, i + 1);
      }
    }
  }

  /** The namespace types in which some dumped process is not in the agent's namespace. */
  List<String> own() {
    return List.copyOf(own);
  }

  /** The ids entry of process {@code p} ({@link #ROOT}: the agent's own, for root_ids). */
  TaskKobjIdsEntry ids(int objId, int p) throws IOException {
    int[] ns = new int[TYPES.length];
    for (int i = 0; i < TYPES.length; i++) {
      ns[i] = i + 1;
      String link = p == ROOT ? null : NsLinks.link(Integer.toString(p), TYPES[i]);
      if (link == null) {
        continue;
      }
      Integer id = byLink.get(link);
      if (id == null) {
        if (TYPES[i].equals("user")) {
          // Another user namespace maps uids and capabilities: not handled.
          throw new DumpException("PID " + p + " is in another user namespace: not supported yet");
        }
        id = next++;
        byLink.put(link, id);
      }
      if (id != i + 1) {
        own.add(TYPES[i]);
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
}
