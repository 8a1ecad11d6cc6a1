package dev.stasis.dump;

import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.PagemapFlags;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.VmaEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The content of anonymous shared memory (MAP_SHARED|MAP_ANONYMOUS, shared /dev/zero mappings),
 * dumped once per shmem object however many VMAs of however many processes of the tree map it, the
 * way CRIU's restore expects it for VMA_ANON_SHARED areas: {@code pagemap-shmem-<shmid>.img} (a
 * head naming a pages file, then runs whose vaddr is the byte offset inside the object) and that
 * {@code pages-<id>.img}. The restore creates the object once, sized to the largest {@code pgoff +
 * length} of its VMAs, fills it from these runs, and maps it into every VMA that names the shmid,
 * so the processes share it again.
 *
 * <p>A memfd's inode is written the same way ({@link #addObject}), keyed by its inode number.
 *
 * <p>The object is read through {@code /proc/PID/map_files/START-END} of one of its VMAs, which
 * opens the shmem file itself: file offsets are object offsets, and a page never touched reads as
 * zeros without being allocated. All-zero pages are left out (the restored object starts zeroed),
 * so a sparse object costs only its written pages. The tree is frozen while this runs.
 */
final class SharedMemory {
  private static final int PAGE = ImageType.PAGE_SIZE;
  private static final int CHUNK_PAGES = 256;

  /** Opens an object for reading: file offsets are object offsets. */
  interface Source {
    FileChannel open() throws IOException;
  }

  /**
   * How the object is read (a map_files or fd link, or a SysV segment attached for the purpose),
   * what to call it in an error, how far to read it, and whether it is a SysV segment (whose id
   * space the restore shares with shmem inode numbers: the two must not meet).
   */
  private record Area(Source source, String what, long reach, boolean sysv) {}

  private final Map<Long, Area> objects = new LinkedHashMap<>();

  /**
   * Notes the anonymous shared VMAs of {@code pid}; keeps, per object, its farthest-reaching one.
   */
  void add(int pid, List<VmaEntry> vmas) throws DumpException {
    for (VmaEntry v : vmas) {
      if (!MemoryMap.isAnonShared(v)) {
        continue;
      }
      String name = Long.toHexString(v.getStart()) + "-" + Long.toHexString(v.getEnd());
      addObject(
          v.getShmid(),
          Path.of("/proc/" + pid + "/map_files/" + name),
          v.getPgoff() + (v.getEnd() - v.getStart()));
    }
  }

  /** Notes an object (a memfd's inode, say) to be read through {@code link} up to {@code reach}. */
  void addObject(long shmid, Path link, long reach) throws DumpException {
    add(
        shmid,
        new Area(
            () -> FileChannel.open(link, StandardOpenOption.READ), link.toString(), reach, false));
  }

  /**
   * Notes SysV segment {@code shmid} of {@code size} bytes, read through {@code source}; CRIU's
   * restore fills the segment it recreates from pagemap-shmem-<shmid> the same way.
   */
  void addSysvSegment(long shmid, long size, Source source) throws DumpException {
    add(shmid, new Area(source, "SysV segment " + shmid, roundUp(size), true));
  }

  private void add(long shmid, Area a) throws DumpException {
    Area had = objects.get(shmid);
    if (had != null && had.sysv() != a.sysv()) {
      throw new DumpException(
          "SysV segment "
              + shmid
              + " and a shared memory object with inode "
              + shmid
              + " would share pagemap-shmem-"
              + shmid
              + ".img: not supported");
    }
    objects.merge(shmid, a, (x, y) -> x.reach() >= y.reach() ? x : y);
  }

  /** How many objects were noted. */
  int objectCount() {
    return objects.size();
  }

  /**
   * Writes every object's pagemap-shmem and pages images; pages files are numbered from {@code
   * firstPagesId} on (one per object). Returns the number of pages written.
   */
  long writeImages(ImageSink sink, int firstPagesId) throws IOException {
    long written = 0;
    int pagesId = firstPagesId;
    for (Map.Entry<Long, Area> e : objects.entrySet()) {
      written += writeObject(sink, e.getKey(), e.getValue(), pagesId++);
    }
    return written;
  }

  private static long writeObject(ImageSink sink, long shmid, Area a, int pagesId)
      throws IOException {
    List<long[]> runs = new ArrayList<>(); // {offset, pages}
    long pages = 0;
    ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK_PAGES * PAGE).order(ByteOrder.nativeOrder());
    try (FileChannel in = a.source().open();
        WritableByteChannel out = sink.create(ImageType.PAGES.fileName(pagesId))) {
      long reach = Math.min(a.reach(), roundUp(in.size()));
      for (long off = 0; off < reach; off += (long) CHUNK_PAGES * PAGE) {
        int want = (int) Math.min((long) CHUNK_PAGES * PAGE, reach - off);
        buf.clear().limit(want);
        while (buf.hasRemaining()) {
          if (in.read(buf, off + buf.position()) < 0) {
            break; // past the end of the object: the rest reads as zeros
          }
        }
        while (buf.hasRemaining()) {
          buf.put((byte) 0);
        }
        for (int p = 0; p < want / PAGE; p++) {
          if (isZero(buf, p * PAGE)) {
            continue;
          }
          long at = off + (long) p * PAGE;
          long[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
          if (last != null && last[0] + last[1] * PAGE == at) {
            last[1]++;
          } else {
            runs.add(new long[] {at, 1});
          }
          ByteBuffer page = buf.duplicate();
          page.limit(p * PAGE + PAGE).position(p * PAGE);
          while (page.hasRemaining()) {
            out.write(page);
          }
          pages++;
        }
      }
    } catch (DumpException e) {
      throw e;
    } catch (IOException e) {
      throw new IOException(
          "shared memory object " + shmid + " (" + a.what() + "): " + Dumper.reason(e), e);
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.SHMEM_PAGEMAP, shmid)) {
      w.write(PagemapHead.newBuilder().setPagesId(pagesId).build());
      for (long[] r : runs) {
        w.write(
            PagemapFlags.withPages(PagemapEntry.newBuilder(), r[1])
                .setVaddr(r[0])
                .setFlags(PagemapFlags.PRESENT)
                .build());
      }
    }
    return pages;
  }

  private static long roundUp(long bytes) {
    return (bytes + PAGE - 1) / PAGE * PAGE;
  }

  private static boolean isZero(ByteBuffer b, int from) {
    for (int i = from; i < from + PAGE; i += 8) {
      if (b.getLong(i) != 0) {
        return false;
      }
    }
    return true;
  }
}
