package dev.stasis.dump.files;

import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FifoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.linux.Linux;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An end of a named pipe (FIFO) still linked at its path: as CRIU describes it, two files.img
 * entries with the same id, a FIFO entry (pipe_id = the FIFO's inode, shared by every end) and a
 * regular-file entry carrying the path and open flags; the judge opens the path again (first
 * read-write, so that opening one end does not block) and refills the FIFO from fifo-data.img,
 * where the queued bytes are captured once per FIFO, as {@link Pipe} does for pipes.
 */
public final class Fifo implements FileKind {
  private final Map<Long, Pipe.PipeData> data = new LinkedHashMap<>();

  @Override
  public boolean recognises(OpenFd fd) {
    return fd.isLivePath() && fd.stat().type() == Linux.S_IFIFO;
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.FIFO;
  }

  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    long ino = fd.stat().ino();
    if (!data.containsKey(ino)) {
      data.put(ino, Pipe.peek(fd.link()));
    }
    return FileEntry.newBuilder()
        .setType(FdTypes.FIFO)
        .setId(id)
        .setFifo(FifoEntry.newBuilder().setId(id).setPipeId((int) ino).setRegfId(id))
        .build();
  }

  @Override
  public List<FileEntry> entries(OpenFd fd, int id) throws IOException {
    FileEntry path = RegularFile.entry(id, fd.target(), fd.openFlags(), 0, fd.stat());
    return List.of(path, dump(fd, id));
  }

  @Override
  public void writeImages(ImageSink sink) throws IOException {
    if (data.values().stream().allMatch(d -> d.bytes().remaining() == 0)) {
      return;
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.FIFO_DATA)) {
      for (Map.Entry<Long, Pipe.PipeData> e : data.entrySet()) {
        Pipe.PipeData d = e.getValue();
        if (d.bytes().remaining() == 0) {
          continue;
        }
        w.write(
            PipeDataEntry.newBuilder()
                .setPipeId(e.getKey().intValue())
                .setBytes(d.bytes().remaining())
                .setSize(d.size())
                .build());
        w.writeData(d.bytes());
      }
    }
  }
}
