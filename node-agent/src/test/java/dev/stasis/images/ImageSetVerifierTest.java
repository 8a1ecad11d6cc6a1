package dev.stasis.images;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FdinfoEntry;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageSetVerifierTest {
  @TempDir Path dir;

  @BeforeEach
  void writeSet() throws IOException {
    try (DirectoryImageSink sink = DirectoryImageSink.open(dir)) {
      SyntheticImageSet.write(sink);
      sink.commit();
    }
  }

  private String problem() {
    return assertThrows(ImageFormatException.class, () -> ImageSetVerifier.verify(dir))
        .getMessage();
  }

  @Test
  void aCompleteSetVerifies() throws IOException {
    assertEquals(new ImageSetVerifier.Summary(14, 1, 2, 2), ImageSetVerifier.verify(dir));
  }

  @Test
  void pagesFileOfTheWrongSizeIsNamed() throws IOException {
    try (FileChannel ch = FileChannel.open(dir.resolve("pages-1.img"), StandardOpenOption.WRITE)) {
      ch.truncate(4096);
    }
    assertEquals(
        "directory "
            + dir
            + ": pages-1.img has 4096 bytes but pagemap-4242.img announces 2 pages (8192 bytes)",
        problem());
    Files.delete(dir.resolve("pages-1.img"));
    assertEquals(
        "directory " + dir + ": pagemap-4242.img announces 2 pages but pages-1.img is missing",
        problem());
  }

  @Test
  void aMissingThreadCoreIsNamed() throws IOException {
    Files.delete(dir.resolve("core-4243.img"));
    assertEquals("directory " + dir + ": core-4243.img is missing", problem());
  }

  @Test
  void danglingFileIdsAreNamed() throws IOException {
    Files.delete(dir.resolve("fdinfo-2.img"));
    try (ImageWriter w =
        ImageWriter.create(
            FileChannel.open(
                dir.resolve("fdinfo-2.img"),
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE),
            ImageType.FDINFO,
            "fdinfo-2.img")) {
      w.write(FdinfoEntry.newBuilder().setId(99).setFlags(0).setType(FdTypes.REG).setFd(0).build());
    }
    assertEquals(
        "directory "
            + dir
            + ": fdinfo-2.img fd 0 refers to file id 99, which files.img does not have",
        problem());
  }

  @Test
  void aCorruptFileIsNamedWithTheSet() throws IOException {
    Path mm = dir.resolve("mm-4242.img");
    byte[] b = Files.readAllBytes(mm);
    Files.write(mm, java.util.Arrays.copyOf(b, b.length - 3));
    String p = problem();
    assertTrue(
        p.startsWith(
            "directory " + dir + ": mm-4242.img: truncated: entry 0 at offset 8 announces"),
        p);
  }
}
