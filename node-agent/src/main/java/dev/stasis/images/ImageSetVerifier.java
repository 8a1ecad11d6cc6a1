package dev.stasis.images;

import com.google.protobuf.Message;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.FsEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.MmEntry;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.images.proto.VmaEntry;
import java.io.IOException;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Checks that an image set is complete and consistent enough for {@code criu restore}: every framed
 * file parses, the inventory is version 2 with fdinfo_per_id, and for every process of the pstree
 * the core (per thread), ids, mm, fs and pagemap images exist, the pages file holds exactly the
 * pages its pagemap announces, and every file id the process refers to exists in files.img. Storage
 * uses it to verify a set before reporting a checkpoint complete; the first problem found is an
 * {@link ImageFormatException} with a one-line message.
 */
public final class ImageSetVerifier {

  /** Where the files of a set are read from (a directory, object storage...). */
  public interface Source {
    /** Names of all files in the set. */
    List<String> names() throws IOException;

    ReadableByteChannel open(String name) throws IOException;

    long size(String name) throws IOException;

    /** Shown in error messages ("directory /x"). */
    String describe();
  }

  /** What a verified set contains. */
  public record Summary(int files, int processes, int threads, long pages) {}

  private final Source src;
  private final Set<String> names;
  // Every framed file is parsed once, in the first pass; the checks then use these entries.
  private final Map<String, List<Message>> parsed = new HashMap<>();

  private ImageSetVerifier(Source src) throws IOException {
    this.src = src;
    this.names = new TreeSet<>(src.names());
  }

  /** Verifies the set in {@code dir}. */
  public static Summary verify(Path dir) throws IOException {
    return verify(directory(dir));
  }

  public static Summary verify(Source src) throws IOException {
    return new ImageSetVerifier(src).run();
  }

  /** A {@link Source} over a plain directory. */
  public static Source directory(Path dir) {
    return new Source() {
      @Override
      public List<String> names() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
          return s.map(p -> p.getFileName().toString()).collect(Collectors.toList());
        }
      }

      @Override
      public ReadableByteChannel open(String name) throws IOException {
        return Files.newByteChannel(dir.resolve(name));
      }

      @Override
      public long size(String name) throws IOException {
        return Files.size(dir.resolve(name));
      }

      @Override
      public String describe() {
        return "directory " + dir;
      }
    };
  }

  private Summary run() throws IOException {
    int files = 0;
    for (String n : names) {
      ImageType t = ImageType.ofFileName(n).orElse(null);
      if (t != null && t.layout() != ImageType.Layout.RAW) {
        read(n, t);
        files++;
      }
    }
    InventoryEntry inv = (InventoryEntry) single(ImageType.INVENTORY.fileName());
    if (inv.getImgVersion() != ImageType.IMAGES_VERSION || !inv.getFdinfoPerId()) {
      throw fail(
          "inventory.img has img_version "
              + inv.getImgVersion()
              + " and fdinfo_per_id "
              + inv.getFdinfoPerId()
              + ", restore needs version 2 with fdinfo_per_id");
    }
    Set<Integer> fileIds = new HashSet<>();
    if (names.contains(ImageType.FILES.fileName())) {
      for (Message m : read(ImageType.FILES.fileName(), ImageType.FILES)) {
        fileIds.add(((FileEntry) m).getId());
      }
    }
    List<Message> tree = read(require(ImageType.PSTREE.fileName()), ImageType.PSTREE);
    if (tree.isEmpty()) {
      throw fail("pstree.img has no process");
    }
    int threads = 0;
    long pages = 0;
    for (Message m : tree) {
      PstreeEntry p = (PstreeEntry) m;
      threads += p.getThreadsCount();
      pages += verifyProcess(p, fileIds);
    }
    return new Summary(files, tree.size(), threads, pages);
  }

  private long verifyProcess(PstreeEntry p, Set<Integer> fileIds) throws IOException {
    int pid = p.getPid();
    if (p.getThreadsCount() == 0 || p.getThreads(0) != pid) {
      throw fail("pstree.img: process " + pid + " must list itself as its first thread");
    }
    for (int tid : p.getThreadsList()) {
      CoreEntry core = (CoreEntry) single(require(ImageType.CORE.fileName(tid)));
      if (!core.hasThreadInfo() || !core.hasThreadCore()) {
        throw fail(ImageType.CORE.fileName(tid) + " lacks thread_info or thread_core");
      }
      if (tid == pid && !core.hasTc()) {
        throw fail(ImageType.CORE.fileName(tid) + " is the leader's but lacks tc");
      }
    }
    TaskKobjIdsEntry ids = (TaskKobjIdsEntry) single(require(ImageType.IDS.fileName(pid)));
    MmEntry mm = (MmEntry) single(require(ImageType.MM.fileName(pid)));
    refer(fileIds, mm.getExeFileId(), ImageType.MM.fileName(pid) + " exe_file_id");
    for (VmaEntry v : mm.getVmasList()) {
      if ((v.getStatus() & (VmaFlags.FILE_PRIVATE | VmaFlags.FILE_SHARED)) != 0) {
        refer(
            fileIds,
            (int) v.getShmid(),
            ImageType.MM.fileName(pid) + " vma " + Long.toHexString(v.getStart()));
      }
    }
    FsEntry fs = (FsEntry) single(require(ImageType.FS.fileName(pid)));
    refer(fileIds, fs.getCwdId(), ImageType.FS.fileName(pid) + " cwd_id");
    refer(fileIds, fs.getRootId(), ImageType.FS.fileName(pid) + " root_id");
    String fdinfo = ImageType.FDINFO.fileName(ids.getFilesId());
    if (names.contains(fdinfo)) {
      for (Message m : read(fdinfo, ImageType.FDINFO)) {
        FdinfoEntry fd = (FdinfoEntry) m;
        refer(fileIds, fd.getId(), fdinfo + " fd " + fd.getFd());
      }
    }
    String pagemap = require(ImageType.PAGEMAP.fileName(pid));
    List<Message> pm = read(pagemap, ImageType.PAGEMAP);
    int pagesId = ((PagemapHead) pm.get(0)).getPagesId();
    long present = 0;
    for (Message m : pm.subList(1, pm.size())) {
      PagemapEntry e = (PagemapEntry) m;
      if ((e.getFlags() & PagemapFlags.PRESENT) != 0) {
        present += PagemapFlags.pages(e);
      }
    }
    String pagesFile = ImageType.PAGES.fileName(pagesId);
    long size = names.contains(pagesFile) ? src.size(pagesFile) : -1;
    if (present > 0 && size < 0) {
      throw fail(pagemap + " announces " + present + " pages but " + pagesFile + " is missing");
    }
    if (size >= 0 && size != present * ImageType.PAGE_SIZE) {
      throw fail(
          pagesFile
              + " has "
              + size
              + " bytes but "
              + pagemap
              + " announces "
              + present
              + " pages ("
              + present * ImageType.PAGE_SIZE
              + " bytes)");
    }
    return present;
  }

  private void refer(Set<Integer> fileIds, int id, String what) throws ImageFormatException {
    if (!fileIds.contains(id)) {
      throw fail(what + " refers to file id " + id + ", which files.img does not have");
    }
  }

  private String require(String name) throws ImageFormatException {
    if (!names.contains(name)) {
      throw fail(name + " is missing");
    }
    return name;
  }

  private Message single(String name) throws IOException {
    List<Message> all = read(require(name), ImageType.ofFileName(name).orElseThrow());
    if (all.size() != 1) {
      throw fail(name + " has " + all.size() + " entries, expected exactly one");
    }
    return all.get(0);
  }

  private List<Message> read(String name, ImageType type) throws IOException {
    List<Message> cached = parsed.get(name);
    if (cached != null) {
      return cached;
    }
    try (ImageReader r = ImageReader.open(src.open(name), type, name)) {
      List<Message> all = r.readAll();
      parsed.put(name, all);
      return all;
    } catch (ImageFormatException e) {
      throw new ImageFormatException(src.describe() + ": " + e.getMessage(), e);
    }
  }

  private ImageFormatException fail(String problem) {
    return new ImageFormatException(src.describe() + ": " + problem);
  }
}
