package dev.stasis.dump.files;

import dev.stasis.images.ImageSink;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import java.io.IOException;
import java.util.List;

/**
 * One kind of open file (regular file, pipe, eventfd, socket...): how to recognise a descriptor of
 * this kind and how to dump the open file description behind it, as CRIU's per-type fd ops do.
 *
 * <p>The kinds are rows of {@link FileKinds#standard()}; a descriptor no row recognises is refused
 * by the table's fallback ({@link Refused}) with a one-line error naming it, before the target is
 * frozen. {@link dev.stasis.dump.FileTable} owns the ids: it calls {@link #dump} once per open file
 * description (descriptors that share one, after dup() or fork(), share its id and are dumped once)
 * and writes the fdinfo entry itself (fd number, close-on-exec, {@link #fdType()}, the id).
 *
 * <p>One instance serves one dump ({@link FileKinds#standard()} makes fresh ones), so a kind may
 * keep what it gathered across the processes of the tree and write it in {@link #writeImages}.
 */
public interface FileKind {

  /**
   * Whether {@code fd} is of this kind: decided from the link target, fstat and fdinfo only, with
   * no side effects (it also runs before the freeze, to refuse early).
   */
  boolean recognises(OpenFd fd);

  /** The type of the fdinfo entry (and of the files.img entry) of a descriptor of this kind. */
  FdTypes fdType();

  /**
   * The files.img entry of the open file description behind {@code fd}, with id {@code id} in both
   * the FileEntry and its type-specific entry. Called on the frozen target; what the kind needs
   * beyond files.img (queued bytes, extra images) it captures here for {@link #writeImages}.
   */
  FileEntry dump(OpenFd fd, int id) throws IOException;

  /**
   * Every files.img entry of the description: {@link #dump}'s, and for a kind that CRIU describes
   * with more than one entry (a FIFO: its own entry plus a regular-file entry with the same id
   * carrying the path) the others too. Only that kind overrides it.
   */
  default List<FileEntry> entries(OpenFd fd, int id) throws IOException {
    return List.of(dump(fd, id));
  }

  /** Images beyond files.img this kind gathered over the whole dump; written once, at the end. */
  default void writeImages(ImageSink sink) throws IOException {}

  /**
   * The dump is over: undo what {@link #dump} left changed on the target's files until now (a TCP
   * connection held in repair mode). {@code targetKilled}: the tree was killed after a complete
   * dump; otherwise it goes on running (left running, or the dump failed), so everything is put
   * back as it was. Called once per dump, also after a failure.
   */
  default void release(boolean targetKilled) throws IOException {}
}
