package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.images.proto.PipeEntry;
import dev.stasis.linux.Linux;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An end of an anonymous pipe: a pipe entry (pipe_id is the pipe's inode, shared by both ends), and
 * the pipe's queued bytes, captured once per pipe, in pipes-data.img.
 */
public final class Pipe implements FileKind {

  /** What a pipe held at dump time: its capacity and its queued bytes (position 0, limit n). */
  record PipeData(int size, ByteBuffer bytes) {}

  private final Map<Long, PipeData> pipeData = new LinkedHashMap<>();

  @Override
  public boolean recognises(OpenFd fd) {
    return fd.target().startsWith("pipe:[");
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.PIPE;
  }

  /**
   * On first sight of the pipe (by inode) its queued bytes are copied without consuming them:
   * /proc/PID/fd/N opened anew is another description of the same pipe, and tee(2) duplicates its
   * buffers into a pipe of the agent's, which is then read.
   */
  @Override
  public FileEntry dump(OpenFd fd, int id) throws IOException {
    long ino = fd.stat().ino();
    if (!pipeData.containsKey(ino)) {
      pipeData.put(ino, peek(fd.link()));
    }
    return FileEntry.newBuilder()
        .setType(FdTypes.PIPE)
        .setId(id)
        .setPipe(
            PipeEntry.newBuilder()
                .setId(id)
                .setPipeId((int) ino)
                .setFlags(fd.openFlags())
                .setFown(FileKinds.noOwner()))
        .build();
  }

  @Override
  public void writeImages(ImageSink sink) throws IOException {
    if (pipeData.isEmpty()) {
      return;
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.PIPES_DATA)) {
      for (Map.Entry<Long, PipeData> e : pipeData.entrySet()) {
        PipeData d = e.getValue();
        if (d.bytes().remaining() == 0) {
          continue; // like CRIU, only pipes with queued bytes get an entry
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

  /** Copies the bytes queued in the pipe or FIFO behind {@code link} without consuming them. */
  static PipeData peek(Path link) throws IOException {
    int in = Linux.open(link.toString(), Linux.O_RDONLY | Linux.O_NONBLOCK);
    try {
      int size = Linux.fcntl(in, Linux.F_GETPIPE_SZ, 0);
      int[] mine = Linux.pipe2(Linux.O_NONBLOCK);
      try {
        Linux.fcntl(mine[1], Linux.F_SETPIPE_SZ, size);
        int n = (int) Linux.tee(in, mine[1], size, Linux.SPLICE_F_NONBLOCK);
        ByteBuffer buf = ByteBuffer.allocateDirect(n);
        while (buf.hasRemaining()) {
          if (Linux.read(mine[0], buf) == 0) {
            throw new DumpException("pipe " + link + ": fewer bytes than tee reported");
          }
        }
        return new PipeData(size, buf.flip());
      } finally {
        Linux.close(mine[0]);
        Linux.close(mine[1]);
      }
    } finally {
      Linux.close(in);
    }
  }
}
