package dev.stasis.dump.ns;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.CgControllerEntry;
import dev.stasis.images.proto.CgMemberEntry;
import dev.stasis.images.proto.CgSetEntry;
import dev.stasis.images.proto.CgroupDirEntry;
import dev.stasis.images.proto.CgroupEntry;
import dev.stasis.images.proto.CgroupPerms;
import dev.stasis.images.proto.CgroupPropEntry;
import dev.stasis.linux.proc.MountInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The cgroup sets of a dumped tree (every thread's core names one by {@code cg_set}) and
 * cgroup.img, CRIU's model of them:
 *
 * <ul>
 *   <li>A set is the list of a thread's /proc lines (hierarchy, path), sorted by hierarchy name.
 *       Set 1 is the agent's own: inventory.root_cg_set names it, and cgroup.img leaves it out, so
 *       that a restore keeps every task that was in the dumper's cgroups in the restorer's (how a
 *       runtime that moved the restorer into the container's cgroups gets them kept). When every
 *       thread is in set 1 there is no cgroup.img at all.
 *   <li>A root task in a cgroup namespace of its own carries, per hierarchy, the length of the path
 *       prefix that is the namespace's root ({@code cgns_prefix}): its path seen from the host ends
 *       with its path seen from inside. The restore enters that prefix, unshares the cgroup
 *       namespace there, then enters the rest. Other tasks copy the root's prefixes (one
 *       namespace).
 *   <li>Per hierarchy of the host (each line of the agent's /proc/self/cgroup but the named ones,
 *       plus each named one a set uses), every directory at or below a set's path with its
 *       properties and permissions: the restore makes what is missing and, in its default "soft"
 *       mode, sets the properties only of the directories it made.
 * </ul>
 *
 * Hierarchies are read through the agent's own mounts of them (mountinfo root + path). Paths in
 * /proc/PID/cgroup are relative to the reader's cgroup namespace: the agent's is the reference, the
 * inside view is read by a thread that joined the task's namespace.
 */
public final class CgroupSets {
  /** Set id of the agent's own cgroups (inventory.root_cg_set). */
  public static final int AGENT_SET = 1;

  static final int CLONE_NEWCGROUP = 0x02000000;

  /** One line of a /proc/PID/cgroup: hierarchy name ("" v2, "cpu,cpuacct", "name=systemd"). */
  record Member(String name, String path, int cgnsPrefix) {}

  // Properties CRIU dumps per v1 controller (its built-in list) and per hierarchy kind.
  private static final Map<String, List<String>> CONTROLLER_PROPS =
      Map.of(
          "cpu",
          List.of(
              "cpu.shares",
              "cpu.cfs_period_us",
              "cpu.cfs_quota_us",
              "cpu.rt_period_us",
              "cpu.rt_runtime_us"),
          "memory",
          List.of(
              "memory.limit_in_bytes",
              "memory.memsw.limit_in_bytes",
              "memory.swappiness",
              "memory.soft_limit_in_bytes",
              "memory.move_charge_at_immigrate",
              "memory.oom_control",
              "memory.use_hierarchy",
              "memory.kmem.limit_in_bytes",
              "memory.kmem.tcp.limit_in_bytes"),
          "cpuset",
          List.of(
              "cpuset.cpus",
              "cpuset.mems",
              "cpuset.memory_migrate",
              "cpuset.cpu_exclusive",
              "cpuset.mem_exclusive",
              "cpuset.mem_hardwall",
              "cpuset.memory_spread_page",
              "cpuset.memory_spread_slab",
              "cpuset.sched_load_balance",
              "cpuset.sched_relax_domain_level"),
          "blkio",
          List.of("blkio.weight"),
          "net_cls",
          List.of("net_cls.classid"),
          "net_prio",
          List.of("net_prio.ifpriomap"),
          "pids",
          List.of("pids.max"),
          "devices",
          List.of("devices.list"));
  private static final List<String> V1_GLOBAL_PROPS =
      List.of("cgroup.clone_children", "notify_on_release", "cgroup.procs", "tasks");
  private static final List<String> V2_GLOBAL_PROPS =
      List.of(
          "cgroup.subtree_control",
          "cgroup.max.descendants",
          "cgroup.max.depth",
          "cgroup.freeze",
          "cgroup.type");

  /** A hierarchy as the agent sees it: its names and where its root directory is reachable. */
  private static final class Hierarchy {
    final List<String> cnames;
    final String mountRoot;
    final Path mountPoint;
    final TreeMap<String, CgroupDirEntry.Builder> dirs = new TreeMap<>();
    boolean threaded;

    Hierarchy(List<String> cnames, String mountRoot, Path mountPoint) {
      this.cnames = cnames;
      this.mountRoot = mountRoot;
      this.mountPoint = mountPoint;
    }

    boolean v2() {
      return cnames.size() == 1 && cnames.get(0).isEmpty();
    }

    /** The agent's path to hierarchy path {@code path}, or null if its mount does not show it. */
    Path dir(String path) {
      if (mountPoint == null) {
        return null;
      }
      String r = mountRoot.equals("/") ? "" : mountRoot;
      if (!(path.equals(r) || path.startsWith(r + "/") || r.isEmpty())) {
        return null;
      }
      String rest = path.substring(r.length());
      return rest.isEmpty() || rest.equals("/")
          ? mountPoint
          : mountPoint.resolve(rest.substring(1));
    }
  }

  private final List<List<Member>> sets = new ArrayList<>();
  private final List<Hierarchy> hierarchies = new ArrayList<>();
  private final List<MountInfo.Mount> mounts;
  private final Path fsRoot;
  private List<Member> rootSet;

  /**
   * {@code agentCgroup}: the agent's /proc/self/cgroup; {@code agentMounts}: its mountinfo; {@code
   * fsRoot}: where the agent's "/" is (a test's directory standing for it).
   */
  CgroupSets(String agentCgroup, List<MountInfo.Mount> agentMounts, Path fsRoot)
      throws DumpException {
    this.mounts = agentMounts;
    this.fsRoot = fsRoot;
    List<Member> agent = parse(agentCgroup);
    sets.add(agent);
    for (Member m : agent) {
      if (!m.name().startsWith("name=")) {
        hierarchies.add(hierarchy(m.name()));
      }
    }
  }

  /** The host's: the agent's own /proc/self/cgroup and mounts. */
  public static CgroupSets host() throws IOException {
    return new CgroupSets(
        Files.readString(Path.of("/proc/self/cgroup")),
        MountInfo.read((int) ProcessHandle.current().pid()),
        Path.of("/"));
  }

  /**
   * The set id of thread {@code tid} of process {@code pid}, read from /proc (while frozen). {@code
   * root}: the tree's root process; if it is in a cgroup namespace of its own, the inside view of
   * its first thread gives the namespace's root (one join of the namespace per dump: every later
   * thread copies the prefixes).
   */
  public int thread(int pid, int tid, boolean root) throws IOException {
    String file = "/proc/" + pid + "/task/" + tid + "/cgroup";
    String host = Files.readString(Path.of(file));
    String inside = null;
    if (root && rootSet == null && NamespaceIds.differs(Integer.toString(pid), "cgroup")) {
      inside =
          InNamespace.call(pid, "cgroup", CLONE_NEWCGROUP, () -> Files.readString(Path.of(file)));
    }
    return add(pid, host, inside, root);
  }

  /**
   * The set of a thread whose /proc lines are {@code host} ({@code inside}: its own view, given for
   * the root's first thread; any later thread copies the root's prefixes).
   */
  int add(int pid, String host, String inside, boolean root) throws DumpException {
    List<Member> set = parse(host);
    if (inside != null) {
      set = withPrefixes(pid, set, parse(inside));
    } else if (rootSet != null) {
      List<Member> copied = new ArrayList<>();
      for (Member m : set) {
        int prefix = 0;
        for (Member r : rootSet) {
          if (r.name().equals(m.name())) {
            prefix = r.cgnsPrefix();
          }
        }
        if (m.path().length() < prefix) {
          throw new DumpException(
              "PID "
                  + pid
                  + "'s cgroup "
                  + m.path()
                  + " ("
                  + m.name()
                  + ") is above its cgroup namespace's root: not supported");
        }
        copied.add(new Member(m.name(), m.path(), prefix));
      }
      set = copied;
    }
    if (root && rootSet == null) {
      rootSet = set;
    }
    int i = sets.indexOf(set);
    if (i < 0) {
      sets.add(set);
      i = sets.size() - 1;
    }
    return i + 1;
  }

  /**
   * CRIU's rule: where a path seen from inside differs from the host's, the host's ends with it and
   * what precedes is the namespace's root (without its trailing slash).
   */
  private static List<Member> withPrefixes(int pid, List<Member> host, List<Member> inside)
      throws DumpException {
    List<Member> out = new ArrayList<>();
    boolean any = false;
    for (Member h : host) {
      int prefix = 0;
      for (Member in : inside) {
        if (!in.name().equals(h.name()) || in.path().equals(h.path())) {
          continue;
        }
        String tail = in.path().substring(1);
        if (!h.path().endsWith(tail)) {
          throw new DumpException(
              "PID "
                  + pid
                  + "'s cgroup "
                  + in.path()
                  + " seen from its cgroup namespace is not a tail of "
                  + h.path()
                  + " ("
                  + h.name()
                  + ")");
        }
        prefix = h.path().length() - tail.length();
        if (prefix > 0 && h.path().charAt(prefix - 1) == '/') {
          prefix--;
        }
      }
      any |= prefix > 0;
      out.add(new Member(h.name(), h.path(), prefix));
    }
    if (!any) {
      // The restore makes a cgroup namespace only where a prefix says where its root is.
      throw new DumpException(
          "PID "
              + pid
              + " is in a cgroup namespace of its own rooted at every hierarchy's root: not"
              + " supported");
    }
    return out;
  }

  /** Whether some thread is in cgroups other than the agent's (then cgroup.img is written). */
  public boolean needsImage() {
    return sets.size() > 1;
  }

  /** Writes cgroup.img if any thread is outside the agent's cgroups (CRIU writes none then). */
  public void write(ImageSink sink) throws IOException {
    if (needsImage()) {
      ImageWriter.writeFile(sink, ImageType.CGROUP, List.of(entry()));
    }
  }

  /** The image's one entry: every set but the agent's, every hierarchy with the sets' dirs. */
  CgroupEntry entry() throws IOException {
    CgroupEntry.Builder e = CgroupEntry.newBuilder();
    for (int i = 1; i < sets.size(); i++) {
      CgSetEntry.Builder s = CgSetEntry.newBuilder().setId(i + 1);
      for (Member m : sets.get(i)) {
        CgMemberEntry.Builder c = CgMemberEntry.newBuilder().setName(m.name()).setPath(m.path());
        if (m.cgnsPrefix() > 0) {
          c.setCgnsPrefix(m.cgnsPrefix());
        }
        s.addCtls(c);
        collect(hierarchyOf(m.name()), m.path());
      }
      e.addSets(s);
    }
    for (Hierarchy h : hierarchies) {
      CgControllerEntry.Builder c =
          CgControllerEntry.newBuilder().addAllCnames(h.cnames).setIsThreaded(h.threaded);
      for (CgroupDirEntry.Builder d : nest(h)) {
        c.addDirs(d);
      }
      e.addControllers(c);
    }
    return e.build();
  }

  /**
   * The hierarchy whose names cover line name {@code name}; a named one is added when first used.
   */
  private Hierarchy hierarchyOf(String name) throws DumpException {
    for (Hierarchy h : hierarchies) {
      if (String.join(",", h.cnames).equals(name)) {
        return h;
      }
    }
    if (!name.startsWith("name=")) {
      throw new DumpException(
          "cgroup hierarchy \"" + name + "\" of the tree is not among the agent's own");
    }
    Hierarchy h = hierarchy(name);
    hierarchies.add(h);
    return h;
  }

  private Hierarchy hierarchy(String name) {
    List<String> cnames = name.isEmpty() ? List.of("") : List.of(name.split(","));
    for (MountInfo.Mount m : mounts) {
      boolean match =
          name.isEmpty()
              ? m.fsType().equals("cgroup2")
              : m.fsType().equals("cgroup") && m.superOptions().containsAll(cnames);
      if (match) {
        return new Hierarchy(cnames, m.root(), fsRoot.resolve(m.mountpoint().substring(1)));
      }
    }
    return new Hierarchy(cnames, "/", null);
  }

  /** Records the directory of hierarchy path {@code path} and every directory below it. */
  private void collect(Hierarchy h, String path) throws IOException {
    if (h.dirs.containsKey(path)) {
      return;
    }
    Path dir = h.dir(path);
    if (dir == null || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new DumpException(
          "cgroup "
              + path
              + " of hierarchy \""
              + String.join(",", h.cnames)
              + "\" is not reachable through the agent's mounts: cannot dump its cgroups");
    }
    List<Path> walk = new ArrayList<>();
    // Directories of others (outside the frozen tree) may come and go during the walk.
    Files.walkFileTree(
        dir,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) {
            walk.add(d);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFileFailed(Path f, IOException e) throws IOException {
            if (e instanceof NoSuchFileException && !f.equals(dir)) {
              return FileVisitResult.CONTINUE;
            }
            throw e;
          }
        });
    for (Path d : walk) {
      String rel = dir.relativize(d).toString();
      String p = rel.isEmpty() ? path : (path.equals("/") ? "" : path) + "/" + rel;
      if (!h.dirs.containsKey(p)) {
        try {
          h.dirs.put(p, dirEntry(h, d));
        } catch (NoSuchFileException e) {
          if (d.equals(dir)) {
            throw e;
          }
          // removed meanwhile: no task of the tree is in it (they are frozen in theirs)
        }
      }
    }
  }

  private CgroupDirEntry.Builder dirEntry(Hierarchy h, Path d) throws IOException {
    CgroupDirEntry.Builder b = CgroupDirEntry.newBuilder().setDirName("").setDirPerms(perms(d));
    List<String> names = new ArrayList<>();
    for (String c : h.cnames) {
      names.addAll(CONTROLLER_PROPS.getOrDefault(c, List.of()));
    }
    names.addAll(h.v2() ? V2_GLOBAL_PROPS : V1_GLOBAL_PROPS);
    for (String n : names) {
      Path f = d.resolve(n);
      String value;
      try {
        value = value(n, Files.readAllBytes(f));
      } catch (NoSuchFileException e) {
        continue; // not on this kernel or not enabled here
      } catch (IOException e) {
        throw new DumpException("cannot read cgroup property " + f + ": " + e.getMessage(), e);
      }
      if ((n.equals("cgroup.type") && value.equals("threaded")) || n.equals("tasks")) {
        h.threaded = true;
      }
      b.addProperties(CgroupPropEntry.newBuilder().setName(n).setValue(value).setPerms(perms(f)));
    }
    return b;
  }

  /** A property's value as CRIU stores it. */
  static String value(String name, byte[] raw) throws DumpException {
    if (name.equals("cgroup.procs") || name.equals("tasks")) {
      return ""; // only its permissions are restored
    }
    String v = new String(raw, StandardCharsets.US_ASCII);
    if (v.endsWith("\n")) {
      v = v.substring(0, v.length() - 1);
    }
    if (name.equals("memory.oom_control")) {
      for (String line : v.split("\n")) {
        if (line.startsWith("oom_kill_disable ")) {
          return line.substring("oom_kill_disable ".length()).strip();
        }
      }
      throw new DumpException("memory.oom_control has no oom_kill_disable line: " + v);
    }
    try {
      // "no limit" in a v1 file is LLONG_MAX rounded to the page; CRIU writes -1 for exactly it
      if (Long.parseLong(v.strip()) == Long.MAX_VALUE) {
        return "-1";
      }
    } catch (NumberFormatException e) {
      // not a number
    }
    return v;
  }

  private static CgroupPerms perms(Path p) throws IOException {
    Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid", LinkOption.NOFOLLOW_LINKS);
    return CgroupPerms.newBuilder()
        .setMode((Integer) a.get("mode"))
        .setUid((Integer) a.get("uid"))
        .setGid((Integer) a.get("gid"))
        .build();
  }

  /**
   * The recorded directories as trees: a directory's parent is the nearest recorded ancestor; a top
   * one is named by its whole path without the leading slash ("" for the root), a child by its path
   * below its parent.
   */
  private static List<CgroupDirEntry.Builder> nest(Hierarchy h) {
    Map<String, CgroupDirEntry.Builder> built = new LinkedHashMap<>();
    List<CgroupDirEntry.Builder> tops = new ArrayList<>();
    Map<String, List<String>> children = new TreeMap<>();
    List<String> paths = new ArrayList<>(h.dirs.keySet());
    paths.sort(Comparator.comparingInt(String::length).thenComparing(Comparator.naturalOrder()));
    Map<String, String> parentOf = new LinkedHashMap<>();
    for (String p : paths) {
      String parent = up(p);
      while (parent != null && !h.dirs.containsKey(parent)) {
        parent = up(parent);
      }
      parentOf.put(p, parent);
      if (parent != null) {
        children.computeIfAbsent(parent, k -> new ArrayList<>()).add(p);
      }
    }
    // build bottom-up: longest paths first, so children are complete when added
    List<String> bottomUp = new ArrayList<>(paths);
    Collections.reverse(bottomUp);
    for (String p : bottomUp) {
      String parent = parentOf.get(p);
      String name =
          parent == null
              ? p.substring(1)
              : p.substring(parent.equals("/") ? 1 : parent.length() + 1);
      CgroupDirEntry.Builder b = h.dirs.get(p).clone().setDirName(name);
      for (String c : children.getOrDefault(p, List.of())) {
        b.addChildren(built.get(c));
      }
      built.put(p, b);
    }
    for (String p : paths) {
      if (parentOf.get(p) == null) {
        tops.add(built.get(p));
      }
    }
    return tops;
  }

  /** The parent of hierarchy path {@code p} ("/a/b" to "/a", "/a" to "/"); null for "/". */
  private static String up(String p) {
    int i = p.lastIndexOf('/');
    return p.equals("/") || i < 0 ? null : i == 0 ? "/" : p.substring(0, i);
  }

  /** Lines of a /proc/PID/cgroup, sorted by hierarchy name (CRIU's set order). */
  static List<Member> parse(String text) throws DumpException {
    List<Member> out = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.isBlank()) {
        continue;
      }
      int a = line.indexOf(':');
      int b = a < 0 ? -1 : line.indexOf(':', a + 1);
      if (b < 0) {
        throw new DumpException("unexpected line in a /proc cgroup file: " + line);
      }
      out.add(new Member(line.substring(a + 1, b), line.substring(b + 1), 0));
    }
    out.sort(Comparator.comparing(Member::name));
    return out;
  }
}
