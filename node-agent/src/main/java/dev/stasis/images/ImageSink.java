package dev.stasis.images;

import java.io.IOException;
import java.nio.channels.WritableByteChannel;

/**
 * Where the image files of one dump go. The dump engine writes every file through a sink and knows
 * nothing else about storage: a sink may put the bytes in a directory, stream them to object
 * storage while the dump is still running, or both.
 *
 * <p>Contract:
 *
 * <ul>
 *   <li>{@link #create} may be called for several files that are open at once (the pages file stays
 *       open while small images are written). A file's bytes are only accepted once its channel is
 *       closed without error; an exception from {@code write} or {@code close} fails the dump.
 *   <li>{@link #commit} is called once, after every channel is closed, and is what makes the set
 *       visible as complete. Until then nobody may take the set for a usable checkpoint.
 *   <li>{@link #abort} discards everything written so far. {@link #close} without a successful
 *       {@code commit} aborts, so a failed dump never leaves an image set that looks complete.
 * </ul>
 */
public interface ImageSink extends AutoCloseable {

  /**
   * Where the files of an incremental dump's parent image set go: CRIU's restore opens the entry
   * {@code parent} of the images directory (a directory or a symlink to one) for the pages that a
   * pagemap entry marks as in the parent, and reads {@code pagemap-ID.img} and its pages file
   * there. A sink that {@link #holdsParent} accepts names {@code parent/NAME} in {@link #create}.
   */
  String PARENT = "parent/";

  /**
   * Opens a new image file, named as CRIU names it (for example {@code core-42.img}), or {@code
   * parent/} and such a name for a file of the parent set.
   */
  WritableByteChannel create(String name) throws IOException;

  /** Whether this sink takes a parent image set ({@link #PARENT}). */
  default boolean holdsParent() {
    return false;
  }

  /**
   * Makes the parent set's files written so far durable (a pre-copy's, while its process runs), so
   * the commit has only the rest to force. Visible as complete only with the commit all the same.
   */
  default void syncParent() throws IOException {}

  /**
   * Opens the raw pages image, of {@code bytes} bytes. {@code writeThrough} tells the sink that the
   * set will be committed (made durable) while the dumped process waits frozen, as in a dump that
   * kills it: a sink that can then write the file straight to its device returns a {@link
   * DirectChannel}, so that the disk works during the copy instead of in the final fsync. Without
   * it the process is released before {@link #commit}, and a sink may take the pages at local speed
   * and ship them in the commit (a store's spool). Any other sink returns {@link #create}'s
   * channel, which every caller must accept as well.
   */
  default WritableByteChannel createPages(String name, boolean writeThrough, long bytes)
      throws IOException {
    return create(name);
  }

  /**
   * Facts about the dump for the checkpoint's manifest (source PIDs, kernel, CPU, per-phase timings
   * in ms...), as flat dotted keys such as {@code timing.frozen_ms}. Called before {@link #commit};
   * a sink without a manifest ignores them.
   */
  default void recordMetadata(java.util.Map<String, String> facts) {}

  /**
   * Tells the sink when to give up work it does on its own after the dump, such as a commit that
   * uploads spooled pages (minutes for a large checkpoint): once {@code cancelled} answers true,
   * that work stops with an IOException and the set is aborted. A sink whose commit is short
   * ignores it.
   */
  default void cancelWhen(java.util.function.BooleanSupplier cancelled) {}

  /**
   * Gives the set up from another thread (a freeze deadline passed): writes and waits of the dump's
   * thread in this sink fail with an IOException as soon as possible, so that the dump releases its
   * process; the dump then aborts the set as after any failure. Must not block.
   */
  default void cancel(String reason) {}

  /** Makes the whole set durable and visible as complete. */
  void commit() throws IOException;

  /** Discards every file of this set. Never throws: it runs on error paths. */
  void abort();

  /**
   * The identity of the checkpoint being written (a store's random id, recorded in its manifest),
   * or null for a sink without one (a plain directory).
   */
  default String checkpointId() {
    return null;
  }

  /** A human description of the destination, for messages ("directory /x", "s3://b/p"). */
  String describe();

  /** Aborts unless {@link #commit} succeeded. */
  @Override
  void close();
}
