package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class DirectoryImageSinkTest {
  private static final int PAGE = 4096;

  private final java.util.List<Path> dirs = new java.util.ArrayList<>();

  // Under target/ (a disk file system on every machine this builds on), not /tmp, which may be a
  // tmpfs: the point is the O_DIRECT path of an ordinary image directory.
  private Path newDir(String prefix) throws IOException {
    Path d = Files.createTempDirectory(Files.createDirectories(Path.of("target", "sinks")), prefix);
    dirs.add(d);
    return d;
  }

  @org.junit.jupiter.api.AfterEach
  void removeDirs() throws IOException {
    for (Path d : dirs) {
      try (Stream<Path> s = Files.walk(d)) {
        s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  private static ByteBuffer pages(int first, int count) {
    ByteBuffer b = ByteBuffer.allocateDirect((count + 1) * PAGE).alignedSlice(PAGE);
    b.limit(count * PAGE);
    for (int i = 0; i < count * PAGE; i += 8) {
      b.putLong(i, ((long) (first + i / PAGE) << 32) | i);
    }
    return b;
  }

  private static byte[] bytes(ByteBuffer b) {
    byte[] a = new byte[b.remaining()];
    b.duplicate().get(a);
    return a;
  }

  @Test
  void writeThroughPagesGoDirectAndLandInOrderFromSeveralThreads() throws Exception {
    Path dir = newDir("direct");
    ByteBuffer a = pages(0, 8);
    ByteBuffer b = pages(8, 8);
    ByteBuffer c = pages(16, 3);
    byte[] expected = new byte[19 * PAGE];
    System.arraycopy(bytes(a), 0, expected, 0, 8 * PAGE);
    System.arraycopy(bytes(b), 0, expected, 8 * PAGE, 8 * PAGE);
    System.arraycopy(bytes(c), 0, expected, 16 * PAGE, 3 * PAGE);
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      WritableByteChannel ch =
          sink.createPages("pages-1.img", true, DirectoryImageSink.EARLY_SYNC_MAX + 1);
      // ext4 and xfs (the image directories of this project's machines) take O_DIRECT.
      DirectChannel d = assertInstanceOf(DirectChannel.class, ch);
      assertEquals(PAGE, d.alignment());
      assertThrows(UnsupportedOperationException.class, () -> d.write(ByteBuffer.allocate(1)));
      ExecutorService pool = Executors.newFixedThreadPool(2);
      try {
        // Out of order, concurrently: positions decide where bytes land.
        Future<?> f1 = pool.submit(() -> write(d, c, 16L * PAGE));
        Future<?> f2 = pool.submit(() -> write(d, a, 0));
        f1.get();
        f2.get();
        write(d, b, 8L * PAGE);
      } finally {
        pool.shutdown();
      }
      ch.close();
      try (WritableByteChannel small = sink.create("inventory.img")) {
        small.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
      }
      sink.commit();
    }
    assertArrayEquals(expected, Files.readAllBytes(dir.resolve("pages-1.img")));
    assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(dir.resolve("inventory.img")));
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(2, s.count(), "nothing but the two images is left in " + dir);
    }
  }

  private static Void write(DirectChannel d, ByteBuffer b, long pos) throws IOException {
    d.writeFully(b.duplicate(), pos);
    return null;
  }

  @Test
  void smallWriteThroughPagesAreFlushedWhileWrittenAndLandInOrder() throws Exception {
    Path dir = newDir("early");
    int pagesPerWrite = 1024; // 4 MiB writes: the flushes start after 16 MiB
    int writes = 9;
    java.security.MessageDigest want = java.security.MessageDigest.getInstance("SHA-256");
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      WritableByteChannel ch =
          sink.createPages("pages-1.img", true, (long) writes * pagesPerWrite * 4096);
      assertFalse(ch instanceof DirectChannel, "a small kill-mode pages file is not O_DIRECT");
      for (int i = 0; i < writes; i++) {
        ByteBuffer b = pages(i * pagesPerWrite, pagesPerWrite);
        want.update(b.duplicate());
        while (b.hasRemaining()) {
          ch.write(b);
        }
      }
      ch.close();
      sink.commit();
    }
    byte[] got = Files.readAllBytes(dir.resolve("pages-1.img"));
    assertEquals((long) writes * pagesPerWrite * 4096, got.length);
    assertArrayEquals(
        want.digest(), java.security.MessageDigest.getInstance("SHA-256").digest(got));
  }

  @Test
  void killModePagesGoThroughThePageCacheUpToTheLimitAndDirectBeyondUnlessForced() {
    assertTrue(DirectoryImageSink.earlySyncFor(64L << 20, null));
    assertTrue(DirectoryImageSink.earlySyncFor(DirectoryImageSink.EARLY_SYNC_MAX, null));
    assertFalse(DirectoryImageSink.earlySyncFor(DirectoryImageSink.EARLY_SYNC_MAX + 1, null));
    assertFalse(DirectoryImageSink.earlySyncFor(64L << 20, "direct"));
    assertTrue(DirectoryImageSink.earlySyncFor(4L << 30, "buffered"));
  }

  @Test
  void withoutWriteThroughThePagesFileIsAnOrdinaryChannel() throws Exception {
    Path dir = newDir("buffered");
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      WritableByteChannel ch = sink.createPages("pages-1.img", false, 0);
      assertFalse(ch instanceof DirectChannel);
      ByteBuffer one = pages(0, 1);
      byte[] expected = bytes(one);
      while (one.hasRemaining()) {
        ch.write(one);
      }
      ch.close();
      sink.commit();
      assertArrayEquals(expected, Files.readAllBytes(dir.resolve("pages-1.img")));
    }
  }

  @Test
  void bothWaysOfCreatingAFileCheckTheNameAndRefuseDuplicates() throws Exception {
    Path dir = newDir("names");
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      for (boolean through : new boolean[] {true, false}) {
        assertThrows(
            IllegalArgumentException.class, () -> sink.createPages("../pages-1.img", through, 0));
        assertThrows(
            IllegalArgumentException.class, () -> sink.createPages(".pages-1.img", through, 0));
      }
      sink.createPages("pages-1.img", true, 0).close();
      assertThrows(IllegalArgumentException.class, () -> sink.createPages("pages-1.img", true, 0));
      assertThrows(IllegalArgumentException.class, () -> sink.create("pages-1.img"));
    }
    // "../pages-1.img" from the staging directory would have landed here
    try (Stream<Path> s = Files.list(dir)) {
      assertTrue(s.findAny().isEmpty(), "nothing escaped the staging directory");
    }
  }

  @Test
  void anAbortedDirectFileLeavesNothing() throws Exception {
    Path dir = newDir("abort");
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      DirectChannel d =
          assertInstanceOf(
              DirectChannel.class,
              sink.createPages("pages-1.img", true, DirectoryImageSink.EARLY_SYNC_MAX + 1));
      d.writeFully(pages(0, 4), 0);
      // no commit: close aborts
    }
    try (Stream<Path> s = Files.list(dir)) {
      assertTrue(s.findAny().isEmpty(), "an aborted set leaves the directory empty");
    }
  }

  /**
   * An incremental set's parent files ({@code parent/NAME}) are staged with the rest and land in
   * DIR/parent at the commit, replacing a {@code parent} symlink (a pre-dump's) rather than writing
   * through it; an aborted set leaves neither.
   */
  @Test
  void parentFilesLandInTheParentDirectoryOnlyAtTheCommit() throws Exception {
    Path dir = newDir("parent");
    Path elsewhere = newDir("elsewhere");
    Files.createSymbolicLink(dir.resolve("parent"), elsewhere);
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      assertTrue(sink.holdsParent());
      try (WritableByteChannel ch = sink.create("parent/pagemap-7.img")) {
        ch.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
      }
      try (WritableByteChannel ch = sink.createPages("parent/pages-1.img", false, PAGE)) {
        ch.write(pages(0, 1));
      }
      sink.syncParent();
      try (WritableByteChannel ch = sink.create("pagemap-7.img")) {
        ch.write(ByteBuffer.wrap(new byte[] {4}));
      }
      assertThrows(IllegalArgumentException.class, () -> sink.create("parent/../x.img"));
      assertThrows(IllegalArgumentException.class, () -> sink.create("parent/pagemap-7.img"));
      assertFalse(Files.exists(dir.resolve("pagemap-7.img")), "nothing visible before the commit");
      sink.commit();
    }
    assertFalse(Files.isSymbolicLink(dir.resolve("parent")), "the symlink was replaced");
    assertArrayEquals(
        new byte[] {1, 2, 3}, Files.readAllBytes(dir.resolve("parent/pagemap-7.img")));
    assertEquals(PAGE, Files.size(dir.resolve("parent/pages-1.img")));
    assertArrayEquals(new byte[] {4}, Files.readAllBytes(dir.resolve("pagemap-7.img")));
    try (Stream<Path> s = Files.list(elsewhere)) {
      assertEquals(0, s.count(), "nothing written through the old link");
    }
    try (Stream<Path> s = Files.list(dir)) {
      assertFalse(s.anyMatch(p -> p.getFileName().toString().startsWith(".")), "no staging left");
    }

    Path other = newDir("aborted");
    try (DirectoryImageSink sink = DirectoryImageSink.open(other)) {
      try (WritableByteChannel ch = sink.create("parent/pagemap-7.img")) {
        ch.write(ByteBuffer.wrap(new byte[] {1}));
      }
      sink.abort();
    }
    try (Stream<Path> s = Files.list(other)) {
      assertEquals(0, s.count(), "an aborted set leaves nothing, parent included");
    }
  }

  /**
   * The abort removes its staging directory without following a {@code parent} symlink found in it:
   * the files of the directory it points to stay (the fetch's staging cleanup, shared, never
   * followed one).
   */
  @Test
  void anAbortFollowsNoParentSymlinkInItsStaging() throws Exception {
    Path dir = newDir("abortlink");
    Path victim = newDir("victim");
    Files.writeString(victim.resolve("keep.img"), "x");
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      try (WritableByteChannel ch = sink.create("pagemap-7.img")) {
        ch.write(ByteBuffer.wrap(new byte[] {1}));
      }
      try (Stream<Path> s = Files.list(dir)) {
        Path staging = s.filter(p -> p.getFileName().toString().startsWith(".")).findFirst().get();
        Files.createSymbolicLink(staging.resolve("parent"), victim.toAbsolutePath());
      }
      sink.abort();
    }
    assertTrue(Files.exists(victim.resolve("keep.img")), "the link's target is untouched");
    try (Stream<Path> s = Files.list(dir)) {
      assertEquals(0, s.count(), "the staging directory and the link are gone");
    }
  }

  @Test
  void theCommitsFsyncsRunSideBySideAndAFailureFailsItOnlyOnceAllAreDone() throws Exception {
    // Two fsyncs that each wait for the other: done one after another, neither would pass.
    java.util.concurrent.CyclicBarrier both = new java.util.concurrent.CyclicBarrier(2);
    java.util.concurrent.Callable<Void> meet =
        () -> {
          both.await(10, java.util.concurrent.TimeUnit.SECONDS);
          return null;
        };
    DirectoryImageSink.inParallel(java.util.List.of(meet, meet));

    // One fails at once, the other is still running: the failure is thrown after it finished.
    java.util.concurrent.atomic.AtomicBoolean slowDone =
        new java.util.concurrent.atomic.AtomicBoolean();
    java.util.concurrent.Callable<Void> slow =
        () -> {
          Thread.sleep(200);
          slowDone.set(true);
          return null;
        };
    java.util.concurrent.Callable<Void> failing =
        () -> {
          throw new IOException("EIO on pages-1.img");
        };
    IOException e =
        assertThrows(
            IOException.class,
            () -> DirectoryImageSink.inParallel(java.util.List.of(slow, failing)));
    assertEquals("EIO on pages-1.img", e.getMessage());
    assertTrue(slowDone.get(), "the commit failed before every fsync was done");
  }
}
