package dev.stasis.storage;

import java.io.InputStream;
import java.time.Instant;
import java.util.Collection;
import java.util.List;

/**
 * The few object-store primitives a checkpoint needs, implemented once for a local directory and
 * once for S3. Keys are relative, '/'-separated and already validated by the caller. Every method
 * throws {@link StorageException} with a one-line message naming the destination.
 */
interface ObjectBackend extends AutoCloseable {

  /**
   * Fails clearly if the destination cannot be used at all (missing bucket, bad credentials, no
   * such directory). {@code forWrite} may create a local directory; reading never creates one.
   */
  void checkAccess(boolean forWrite) throws StorageException;

  /** Stores a whole small object in one request. */
  void put(String key, byte[] data, int length) throws StorageException;

  /** Starts a multipart upload; parts may then be sent from several threads at once. */
  Upload startUpload(String key) throws StorageException;

  /** Every object whose key starts with {@code prefix}, recursively. */
  List<ObjectInfo> list(String prefix) throws StorageException;

  /** Multipart uploads started under {@code prefix} and neither completed nor aborted. */
  List<PendingUpload> pendingUploads(String prefix) throws StorageException;

  void abortPending(PendingUpload upload) throws StorageException;

  InputStream get(String key) throws StorageException;

  /** Deletes the objects; missing ones are not an error. */
  void delete(Collection<String> keys) throws StorageException;

  /**
   * Makes every request in flight fail now and every new one fail at once with {@code reason},
   * until {@link #resume}: how a freeze deadline interrupts an upload blocked on a stalled service.
   * Never blocks; callable from any thread.
   */
  default void cancel(String reason) {}

  /** Lets requests through again after {@link #cancel} (for the cleanup of an aborted upload). */
  default void resume() {}

  /** "s3://bucket/key at http://endpoint" or the local path, for messages. */
  String describe(String key);

  @Override
  void close();

  /** One multipart upload in progress. */
  interface Upload {
    /**
     * Sends part {@code number} (1-based), which starts at byte {@code offset} of the object. Safe
     * to call from several threads for different parts.
     */
    void part(int number, long offset, byte[] data, int length) throws StorageException;

    /** Makes the object visible with every part sent so far, in part-number order. */
    void complete() throws StorageException;

    /** Discards the parts. Best effort, never throws. */
    void abort();
  }

  record ObjectInfo(String key, long size, Instant lastModified) {}

  record PendingUpload(String key, String uploadId, Instant initiated) {}
}
