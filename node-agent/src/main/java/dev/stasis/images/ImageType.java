package dev.stasis.images;

import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import dev.stasis.images.proto.CgroupEntry;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.CredsEntry;
import dev.stasis.images.proto.EventfdFileEntry;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.FifoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.FileLockEntry;
import dev.stasis.images.proto.FsEntry;
import dev.stasis.images.proto.GhostChunkEntry;
import dev.stasis.images.proto.GhostFileEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.IpcMsgEntry;
import dev.stasis.images.proto.IpcSemEntry;
import dev.stasis.images.proto.IpcShmEntry;
import dev.stasis.images.proto.IpcVarEntry;
import dev.stasis.images.proto.ItimerEntry;
import dev.stasis.images.proto.MemfdInodeEntry;
import dev.stasis.images.proto.MmEntry;
import dev.stasis.images.proto.MntEntry;
import dev.stasis.images.proto.NetDeviceEntry;
import dev.stasis.images.proto.NetnsEntry;
import dev.stasis.images.proto.NsFileEntry;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.images.proto.PipeEntry;
import dev.stasis.images.proto.PosixTimerEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.RegFileEntry;
import dev.stasis.images.proto.RemapFilePathEntry;
import dev.stasis.images.proto.RlimitEntry;
import dev.stasis.images.proto.SaEntry;
import dev.stasis.images.proto.SeccompEntry;
import dev.stasis.images.proto.SiginfoEntry;
import dev.stasis.images.proto.SkPacketEntry;
import dev.stasis.images.proto.StatsEntry;
import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.images.proto.TcpStreamEntry;
import dev.stasis.images.proto.TimensEntry;
import dev.stasis.images.proto.TtyDataEntry;
import dev.stasis.images.proto.TtyInfoEntry;
import dev.stasis.images.proto.UtsnsEntry;
import dev.stasis.images.proto.VmaEntry;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every image file kind Stasis writes or reads, with CRIU's file name pattern, magic numbers and
 * the protobuf message its entries hold. This table is the single source of those facts: {@link
 * ImageWriter} and {@link ImageReader} are driven by it.
 *
 * <p>File layout (see docs/image-format.md): {@linkplain #magics() magic words} (u32 little-endian
 * each), then entries as {@code u32 LE size, size bytes of protobuf}. Since image version 2 every
 * file except the inventory starts with a "head" magic ({@link #COMMON_MAGIC} for images, {@link
 * #SERVICE_MAGIC} for service files such as stats) followed by its own magic; the inventory has
 * only its own. {@link Layout#RAW} files (pages) have no magic and no framing at all.
 *
 * <p>The name pattern takes one argument: an id ({@code %d}: pid, files_id, pages id, namespace id;
 * {@code %x}: the same in hex: ghost files, socket inodes) or a word ({@code %s}: "dump" or
 * "restore" for stats).
 */
public enum ImageType {
  INVENTORY("inventory.img", Head.NONE, 0x58313116, InventoryEntry.parser()),
  PSTREE("pstree.img", Head.COMMON, 0x50273030, PstreeEntry.parser()),
  /** One per thread, named by tid; the leader's has tc and ids filled. */
  CORE("core-%d.img", Head.COMMON, 0x55053847, CoreEntry.parser()),
  /** Kernel object ids of a process (same content as CoreEntry.ids), named by pid. */
  IDS("ids-%d.img", Head.COMMON, 0x54432030, TaskKobjIdsEntry.parser()),
  MM("mm-%d.img", Head.COMMON, 0x57492820, MmEntry.parser()),
  /** A {@link PagemapHead}, then {@link PagemapEntry} runs; named by pid. */
  PAGEMAP("pagemap-%d.img", Head.COMMON, 0x56084025, PagemapHead.parser(), PagemapEntry.parser()),
  /**
   * The content of one shared memory object (anonymous shared memory, /dev/zero shared mappings),
   * named by its shmem inode number (the shmid of its VMAs): a {@link PagemapHead}, then runs whose
   * vaddr is the byte offset inside the object. Same magic as PAGEMAP.
   */
  SHMEM_PAGEMAP(
      "pagemap-shmem-%d.img", Head.COMMON, 0x56084025, PagemapHead.parser(), PagemapEntry.parser()),
  /** Raw page contents, named by the pages id of the pagemap head. No magic, no framing. */
  PAGES("pages-%d.img"),
  /** The fd table with the given files_id. */
  FDINFO("fdinfo-%d.img", Head.COMMON, 0x56213732, FdinfoEntry.parser()),
  /** Every open file description of the dump, of any kind. */
  FILES("files.img", Head.COMMON, 0x56303138, FileEntry.parser()),
  /** Every file lock the dumped tree holds, each with its holder's pid and fd. */
  FILE_LOCKS("filelocks.img", Head.COMMON, 0x54323616, FileLockEntry.parser()),
  /** Regular-file entries opened through something else than their path (ghost files). */
  REMAP_FPATH("remap-fpath.img", Head.COMMON, 0x59133954, RemapFilePathEntry.parser()),
  /**
   * An unlinked file's metadata and content, named by its ghost id in hex: a {@link
   * GhostFileEntry}, then {@link GhostChunkEntry} runs each followed by its {@code len} raw bytes.
   */
  GHOST_FILE(
      "ghost-file-%x.img",
      Head.COMMON, 0x52583605, GhostFileEntry.parser(), GhostChunkEntry.parser()),
  /** The terminals behind the TTY entries of files.img, one entry per terminal end. */
  TTY_INFO("tty-info.img", Head.COMMON, 0x59453036, TtyInfoEntry.parser()),
  /** Bytes queued to be read on a terminal end, one entry per end that had any. */
  TTY_DATA("tty-data.img", Head.COMMON, 0x59413026, TtyDataEntry.parser()),
  /** cwd/root/umask of the fs struct of a process, named by pid. */
  FS("fs-%d.img", Head.COMMON, 0x51403912, FsEntry.parser()),
  /** Every memfd inode of the dump (content in pagemap-shmem-<inode>). */
  MEMFD_INODE("memfd.img", Head.COMMON, 0x48453499, MemfdInodeEntry.parser()),
  SECCOMP("seccomp.img", Head.COMMON, 0x64413049, SeccompEntry.parser()),
  /**
   * Clock readings at dump time; named by time namespace id, 0 when the task is in the host's time
   * namespace (the usual case).
   */
  TIMENS("timens-%d.img", Head.COMMON, 0x43114433, TimensEntry.parser()),
  /** Buffered pipe bytes: each entry is followed by {@code bytes} raw bytes. */
  PIPES_DATA(
      "pipes-data.img", Head.COMMON, 0x56453709, Layout.ENTRIES_WITH_DATA, PipeDataEntry.parser()),
  /** Buffered FIFO bytes, laid out as {@link #PIPES_DATA}. */
  FIFO_DATA(
      "fifo-data.img", Head.COMMON, 0x59333054, Layout.ENTRIES_WITH_DATA, PipeDataEntry.parser()),
  /** The mounts of the mount namespace with this id, parents before children not required. */
  MNTS("mountpoints-%d.img", Head.COMMON, 0x55563928, MntEntry.parser()),
  /**
   * The files of one tmpfs, named by its superblock's kernel dev_t: a gzip-compressed tar archive,
   * raw (no magic), which the restore extracts into the mounted tmpfs.
   */
  TMPFS_DEV("tmpfs-dev-%d.tar.gz.img"),
  /** Host and domain name of the UTS namespace with this id. */
  UTSNS("utsns-%d.img", Head.COMMON, 0x54473203, UtsnsEntry.parser()),
  /** The sysctl limits of the IPC namespace with this id. */
  IPC_VAR("ipcns-var-%d.img", Head.COMMON, 0x53115007, IpcVarEntry.parser()),
  /** The SysV shared memory segments of that IPC namespace (content in pagemap-shmem-<shmid>). */
  IPCNS_SHM("ipcns-shm-%d.img", Head.COMMON, 0x46283044, IpcShmEntry.parser()),
  /** Its semaphore sets, each followed by its values (u16 each, padded to 8 bytes). */
  IPCNS_SEM(
      "ipcns-sem-%d.img", Head.COMMON, 0x59573019, Layout.ENTRIES_WITH_DATA, IpcSemEntry.parser()),
  /**
   * Its message queues, each followed by its messages: {@code qnum} times a size-prefixed IpcMsg
   * and its text padded to 8 bytes ({@link ImageWriter#writeNested}).
   */
  IPCNS_MSG("ipcns-msg-%d.img", Head.COMMON, 0x55453737, IpcMsgEntry.parser()),
  /** The network devices of the network namespace with this id. */
  NETDEV("netdev-%d.img", Head.COMMON, 0x57373951, NetDeviceEntry.parser()),
  /**
   * The namespace-wide sysctls (ipv4/ipv6 conf of all and default, unix, ping) of that namespace.
   */
  NETNS("netns-%d.img", Head.COMMON, 0x55933752, NetnsEntry.parser()),
  /**
   * The addresses of the network namespace with this id, raw as iproute2's {@code ip addr save}
   * writes them (its magic, then the kernel's RTM_NEWADDR messages); the restore feeds them to
   * {@code ip addr restore}.
   */
  IFADDR("ifaddr-%d.img"),
  /**
   * IPv4 routes of the main table, raw as {@code ip route save} writes them, then those of the
   * other tables but local (replayed the same way).
   */
  ROUTE("route-%d.img"),
  /** IPv6 routes, as above for {@code ip -6 route save}. */
  ROUTE6("route6-%d.img"),
  /**
   * IPv4 policy routing rules, raw as {@code ip rule save} writes them (its magic 0x71706986, then
   * the kernel's RTM_NEWRULE messages); the restore flushes the kernel's default rules and feeds
   * them to {@code ip rule restore}.
   */
  RULE("rule-%d.img"),
  /**
   * The legacy (x_tables) IPv4 rules of the network namespace with this id: the text {@code
   * iptables-save} prints, which the restore feeds to {@code iptables-restore -w} (the legacy one
   * where iptables has the nf_tables backend).
   */
  IPTABLES("iptables-%d.img"),
  /** The legacy IPv6 rules, as {@code ip6tables-save} prints them. */
  IP6TABLES("ip6tables-%d.img"),
  /**
   * The nftables ruleset of the namespace, the text {@code nft list ruleset} prints; the restore
   * runs it as one libnftables command buffer.
   */
  NFTABLES("nftables-%d.img"),
  /** The cgroup sets of the tree's tasks and the hierarchies they are in. */
  CGROUP("cgroup.img", Head.COMMON, 0x59383330, CgroupEntry.parser()),
  /**
   * Data queued on sockets: each entry names the socket it was queued for and is followed by its
   * {@code length} raw bytes.
   */
  SK_QUEUES(
      "sk-queues.img", Head.COMMON, 0x56264026, Layout.ENTRIES_WITH_DATA, SkPacketEntry.parser()),
  /**
   * One established TCP connection, named by its socket inode in hex: a {@link TcpStreamEntry}
   * followed by the receive queue's {@code inq_len} and the send queue's {@code outq_len} raw
   * bytes.
   */
  TCP_STREAM(
      "tcp-stream-%x.img",
      Head.COMMON, 0x51465506, Layout.ENTRIES_WITH_DATA, TcpStreamEntry.parser()),
  /** "stats-dump" / "stats-restore": a service file, note the missing ".img". */
  STATS("stats-%s", Head.SERVICE, 0x57093306, StatsEntry.parser()),

  // Older per-kind files. CRIU 4.x writes this state inside core/files.img instead but still reads
  // these; they are here so that the reader can verify older image sets.
  CREDS("creds-%d.img", Head.COMMON, 0x54023547, CredsEntry.parser()),
  SIGACT("sigacts-%d.img", Head.COMMON, 0x55344201, SaEntry.parser()),
  ITIMERS("itimers-%d.img", Head.COMMON, 0x57464056, ItimerEntry.parser()),
  POSIX_TIMERS("posix-timers-%d.img", Head.COMMON, 0x52603957, PosixTimerEntry.parser()),
  RLIMIT("rlimit-%d.img", Head.COMMON, 0x57113925, RlimitEntry.parser()),
  /** Shared pending signals; the private ones use the same magic, see {@link #PSIGNAL}. */
  SIGNAL("signal-s-%d.img", Head.COMMON, 0x59255647, SiginfoEntry.parser()),
  PSIGNAL("signal-p-%d.img", Head.COMMON, 0x59255647, SiginfoEntry.parser()),
  VMAS("vmas-%d.img", Head.COMMON, 0x54123737, VmaEntry.parser()),
  REG_FILES("reg-files.img", Head.COMMON, 0x50363636, RegFileEntry.parser()),
  PIPES("pipes.img", Head.COMMON, 0x56513555, PipeEntry.parser()),
  FIFO("fifo.img", Head.COMMON, 0x58364939, FifoEntry.parser()),
  EVENTFD_FILE("eventfd.img", Head.COMMON, 0x44523722, EventfdFileEntry.parser()),
  NS_FILES("ns-files.img", Head.COMMON, 0x61394011, NsFileEntry.parser());

  /** First word of every image file except the inventory and raw files (image version 2). */
  public static final int COMMON_MAGIC = Head.COMMON;

  /** First word of service files (stats, irmap cache). */
  public static final int SERVICE_MAGIC = Head.SERVICE;

  /** Value for {@code InventoryEntry.img_version}: images carry the head magic. */
  public static final int IMAGES_VERSION = 2;

  /** Page size of every pages file and pagemap run. */
  public static final int PAGE_SIZE = 4096;

  /** How the bytes after the magics are organised. */
  public enum Layout {
    /** {@code {u32 size, message}*}, all of one message type. */
    ENTRIES,
    /** One head message, then {@code {u32 size, message}*} of the entry type (pagemap). */
    HEAD_THEN_ENTRIES,
    /** Each entry is followed by raw bytes whose count is a field of the entry (pipe data). */
    ENTRIES_WITH_DATA,
    /** Raw bytes only, no magic (pages). */
    RAW
  }

  /**
   * Head magic values, in a holder class: the enum constants above are initialised before the
   * enum's own static fields, so they could not refer to those.
   */
  private static final class Head {
    static final int NONE = 0;
    static final int COMMON = 0x54564319;
    static final int SERVICE = 0x55105940;
  }

  private final String pattern;
  private final Pattern regex;
  private final List<Integer> magics;
  private final Parser<? extends Message> headParser;
  private final Parser<? extends Message> parser;
  private final Class<? extends Message> headClass;
  private final Class<? extends Message> entryClass;
  private final Layout layout;

  ImageType(String pattern) {
    this(pattern, Layout.RAW, List.of(), null, null);
  }

  ImageType(String pattern, int head, int magic, Parser<? extends Message> parser) {
    this(pattern, Layout.ENTRIES, magics(head, magic), null, parser);
  }

  ImageType(String pattern, int head, int magic, Layout layout, Parser<? extends Message> parser) {
    this(pattern, layout, magics(head, magic), null, parser);
  }

  ImageType(
      String pattern,
      int head,
      int magic,
      Parser<? extends Message> headParser,
      Parser<? extends Message> parser) {
    this(pattern, Layout.HEAD_THEN_ENTRIES, magics(head, magic), headParser, parser);
  }

  ImageType(
      String pattern,
      Layout layout,
      List<Integer> magics,
      Parser<? extends Message> headParser,
      Parser<? extends Message> parser) {
    this.pattern = pattern;
    this.regex =
        Pattern.compile(
            Pattern.quote(pattern)
                .replace("%d", "\\E([0-9]+)\\Q")
                .replace("%x", "\\E([0-9a-f]+)\\Q")
                .replace("%s", "\\E([a-z]+)\\Q"));
    this.layout = layout;
    this.magics = magics;
    this.headParser = headParser;
    this.parser = parser;
    this.headClass = headParser == null ? null : defaultInstance(headParser).getClass();
    this.entryClass = parser == null ? null : defaultInstance(parser).getClass();
  }

  private static List<Integer> magics(int head, int magic) {
    return head == Head.NONE ? List.of(magic) : List.of(head, magic);
  }

  /** CRIU's file name pattern, e.g. {@code core-%d.img}. */
  public String pattern() {
    return pattern;
  }

  /** The file name for a type without an argument (inventory.img, files.img...). */
  public String fileName() {
    if (hasArgument()) {
      throw new IllegalArgumentException(name() + " file names need an argument: " + pattern);
    }
    return pattern;
  }

  /** The file name for an id, e.g. {@code CORE.fileName(42)} is {@code core-42.img}. */
  public String fileName(long id) {
    if (!pattern.contains("%d") && !pattern.contains("%x")) {
      throw new IllegalArgumentException(name() + " file names take no numeric id: " + pattern);
    }
    if (id < 0) {
      throw new IllegalArgumentException(name() + " id must not be negative: " + id);
    }
    return String.format(Locale.ROOT, pattern, id);
  }

  /** The file name for a word argument: {@code STATS.fileName("dump")} is {@code stats-dump}. */
  public String fileName(String word) {
    if (!pattern.contains("%s") || !word.matches("[a-z]+")) {
      throw new IllegalArgumentException(
          name() + " file name cannot take '" + word + "': " + pattern);
    }
    return String.format(Locale.ROOT, pattern, word);
  }

  public boolean hasArgument() {
    return pattern.contains("%");
  }

  /** The argument a file name was made with ("42" for core-42.img), if it is of this type. */
  public Optional<String> argumentOf(String fileName) {
    Matcher m = regex.matcher(fileName);
    if (!m.matches()) {
      return Optional.empty();
    }
    return Optional.of(m.groupCount() == 0 ? "" : m.group(1));
  }

  /** The type a file name belongs to, if it is one Stasis models. */
  public static Optional<ImageType> ofFileName(String fileName) {
    for (ImageType t : values()) {
      if (t.regex.matcher(fileName).matches()) {
        return Optional.of(t);
      }
    }
    return Optional.empty();
  }

  /** The u32 words at the start of the file, in order; empty for raw files. */
  public List<Integer> magics() {
    return magics;
  }

  /** This type's own magic (the last of {@link #magics()}); 0 for raw files. */
  public int magic() {
    return magics.isEmpty() ? 0 : magics.get(magics.size() - 1);
  }

  public Layout layout() {
    return layout;
  }

  /** Parser of the entries; null for raw files. */
  public Parser<? extends Message> parser() {
    return parser;
  }

  /** Parser of the single leading head message ({@link PagemapHead}), or null if none. */
  public Parser<? extends Message> headParser() {
    return headParser;
  }

  /** The message class of entry number {@code index} (0-based), or null for raw files. */
  public Class<? extends Message> messageClass(long index) {
    return index == 0 && headClass != null ? headClass : entryClass;
  }

  /**
   * How many raw bytes follow {@code entry} in the file for {@link Layout#ENTRIES_WITH_DATA}: the
   * {@code bytes} field of a pipe data entry, the {@code length} of a socket packet, both queues of
   * a TCP stream; the {@code len} of a ghost file's chunk; a semaphore set's values; else 0.
   */
  public long trailingBytes(Message entry) {
    if (entry instanceof GhostChunkEntry c) {
      return c.getLen();
    }
    if (layout != Layout.ENTRIES_WITH_DATA) {
      return 0;
    }
    if (entry instanceof IpcSemEntry s) {
      return (2 * Integer.toUnsignedLong(s.getNsems()) + 7) / 8 * 8;
    }
    if (entry instanceof SkPacketEntry p) {
      return Integer.toUnsignedLong(p.getLength());
    }
    if (entry instanceof TcpStreamEntry t) {
      return Integer.toUnsignedLong(t.getInqLen()) + Integer.toUnsignedLong(t.getOutqLen());
    }
    return Integer.toUnsignedLong(((PipeDataEntry) entry).getBytes());
  }

  static Message defaultInstance(Parser<? extends Message> p) {
    try {
      // Every generated parser parses the empty input into the (all unset) default instance.
      return p.parsePartialFrom(new byte[0]);
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException(e);
    }
  }
}
