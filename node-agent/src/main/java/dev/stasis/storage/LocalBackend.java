package dev.stasis.storage;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Objects as files below a base directory: the embedded default, and what {@code file://} URIs
 * name. An upload writes a hidden {@code .NAME.partial-ID} file next to its target and renames it
 * on completion, so an object is either absent or whole. Symbolic links are never followed: a link
 * in the tree is not an object.
 */
final class LocalBackend implements ObjectBackend {
  private static final String PARTIAL = ".partial-";
  private final Path base;

  LocalBackend(Path base) {
    this.base = base.toAbsolutePath().normalize();
  }

  @Override
  public void checkAccess(boolean forWrite) throws StorageException {
    if (!forWrite) {
      if (!Files.isDirectory(base)) {
        throw new StorageException("directory " + base + " does not exist");
      }
      return;
    }
    try {
      Private.createDirectories(base);
    } catch (IOException e) {
      throw new StorageException("directory " + base + " cannot be created: " + e.getMessage(), e);
    }
    if (!Files.isDirectory(base) || !Files.isWritable(base)) {
      throw new StorageException("directory " + base + " is not a writable directory");
    }
  }

  private Path file(String key) throws StorageException {
    Path p = base.resolve(key).normalize();
    if (!p.startsWith(base) || p.equals(base)) {
      throw new VerificationException("object key '" + key + "' escapes " + base);
    }
    // No component below the base may be a symlink: it could point anywhere.
    for (Path q = p.getParent();
        q != null && q.startsWith(base) && !q.equals(base);
        q = q.getParent()) {
      if (Files.isSymbolicLink(q)) {
        throw new VerificationException("object key '" + key + "' goes through symlink " + q);
      }
    }
    return p;
  }

  @Override
  public void put(String key, byte[] data, int length) throws StorageException {
    Upload u = startUpload(key);
    try {
      u.part(1, 0, data, length);
      u.complete();
    } catch (StorageException e) {
      u.abort();
      throw e;
    }
  }

  @Override
  public Upload startUpload(String key) throws StorageException {
    Path target = file(key);
    try {
      List<Path> created = Private.createDirectories(target.getParent());
      Path tmp = target.resolveSibling("." + target.getFileName() + PARTIAL + UUID.randomUUID());
      FileChannel ch = Private.newFile(tmp);
      return new LocalUpload(target, tmp, ch, created);
    } catch (IOException e) {
      throw new StorageException("cannot write " + target + ": " + e.getMessage(), e);
    }
  }

  private static final class LocalUpload implements Upload {
    private final Path target;
    private final Path tmp;
    private final FileChannel ch;

    /** Directories this upload created: their own entries must reach the disk too. */
    private final List<Path> created;

    LocalUpload(Path target, Path tmp, FileChannel ch, List<Path> created) {
      this.target = target;
      this.tmp = tmp;
      this.ch = ch;
      this.created = created;
    }

    @Override
    public void part(int number, long offset, byte[] data, int length) throws StorageException {
      try {
        ByteBuffer b = ByteBuffer.wrap(data, 0, length);
        long pos = offset;
        while (b.hasRemaining()) {
          pos += ch.write(b, pos);
        }
      } catch (IOException e) {
        throw new StorageException("cannot write " + target + ": " + e.getMessage(), e);
      }
    }

    @Override
    public void complete() throws StorageException {
      try {
        ch.force(true);
        ch.close();
        try {
          Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        // the rename is only durable once the directory holding it is: an object (the manifest
        // above all) that a crash could lose must not count as stored
        Private.syncDirectory(target.getParent());
        for (Path d : created) {
          Private.syncDirectory(d.getParent());
        }
      } catch (IOException e) {
        abort();
        throw new StorageException("cannot write " + target + ": " + e.getMessage(), e);
      }
    }

    @Override
    public void abort() {
      try {
        ch.close();
        Files.deleteIfExists(tmp);
      } catch (IOException e) {
        // best effort: a hidden .partial file is never listed as an object
      }
    }
  }

  @Override
  public List<ObjectInfo> list(String prefix) throws StorageException {
    List<ObjectInfo> out = new ArrayList<>();
    walk(prefix, false, out, null);
    return out;
  }

  @Override
  public List<PendingUpload> pendingUploads(String prefix) throws StorageException {
    List<PendingUpload> out = new ArrayList<>();
    walk(prefix, true, null, out);
    return out;
  }

  private void walk(
      String prefix, boolean partials, List<ObjectInfo> objects, List<PendingUpload> pending)
      throws StorageException {
    if (!Files.isDirectory(base, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> s = Files.walk(base)) {
      for (Path p : (Iterable<Path>) s::iterator) {
        BasicFileAttributes a =
            Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isRegularFile()) {
          continue;
        }
        String name = p.getFileName().toString();
        String rel = base.relativize(p).toString();
        int cut = name.indexOf(PARTIAL);
        if (name.startsWith(".") && cut > 0) {
          if (partials) {
            String key = base.relativize(p.resolveSibling(name.substring(1, cut))).toString();
            if (key.startsWith(prefix)) {
              pending.add(new PendingUpload(key, rel, a.creationTime().toInstant()));
            }
          }
        } else if (!partials && !name.startsWith(".") && rel.startsWith(prefix)) {
          objects.add(new ObjectInfo(rel, a.size(), a.lastModifiedTime().toInstant()));
        }
      }
    } catch (NoSuchFileException e) {
      // raced with a delete: what is gone is not listed
    } catch (IOException | java.io.UncheckedIOException e) {
      throw new StorageException("cannot list " + base + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void abortPending(PendingUpload upload) throws StorageException {
    try {
      Files.deleteIfExists(file(upload.uploadId()));
    } catch (IOException e) {
      throw new StorageException("cannot delete " + upload.uploadId() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public InputStream get(String key) throws StorageException {
    Path p = file(key);
    try {
      if (Files.isSymbolicLink(p)) {
        throw new VerificationException("object " + p + " is a symlink, not an object");
      }
      return Channels.newInputStream(
          FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS));
    } catch (NoSuchFileException e) {
      throw new StorageException("object " + p + " does not exist", e);
    } catch (IOException e) {
      throw new StorageException("cannot read " + p + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void delete(Collection<String> keys) throws StorageException {
    for (String k : keys) {
      Path p = file(k);
      try {
        Files.deleteIfExists(p);
        // drop directories the checkpoint leaves empty, up to (not including) the base
        for (Path d = p.getParent();
            d != null && !d.equals(base) && d.startsWith(base);
            d = d.getParent()) {
          try (Stream<Path> s = Files.list(d)) {
            if (s.findAny().isPresent()) {
              break;
            }
          }
          Files.deleteIfExists(d);
        }
      } catch (IOException e) {
        throw new StorageException("cannot delete " + p + ": " + e.getMessage(), e);
      }
    }
  }

  @Override
  public String describe(String key) {
    return key.isEmpty() ? base.toString() : base.resolve(key).toString();
  }

  @Override
  public void close() {}
}
