package dev.stasis.storage;

import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;

/**
 * Where a checkpoint (or a tree of checkpoints, for listing) lives: {@code file:///abs/path} or
 * {@code s3://bucket/prefix}. The prefix never starts or ends with a slash; it may be empty.
 */
public record CheckpointUri(String scheme, String bucket, String prefix, Path path) {

  public static CheckpointUri parse(String text) throws StorageException {
    if (text == null || text.isBlank()) {
      throw new StorageException("checkpoint URI is empty: use file:///path or s3://bucket/prefix");
    }
    URI uri;
    try {
      uri = new URI(text);
    } catch (URISyntaxException e) {
      throw new StorageException("checkpoint URI '" + text + "' is malformed: " + e.getReason());
    }
    String scheme = uri.getScheme();
    if ("file".equals(scheme)) {
      if (uri.getAuthority() != null && !uri.getAuthority().isEmpty()) {
        throw new StorageException(
            "checkpoint URI '" + text + "' has a host; a local path is file:///abs/path");
      }
      String p = uri.getPath();
      if (p == null || !p.startsWith("/")) {
        throw new StorageException("checkpoint URI '" + text + "' needs an absolute path");
      }
      return new CheckpointUri("file", null, "", Path.of(p).normalize());
    }
    if ("s3".equals(scheme)) {
      String bucket = uri.getAuthority();
      if (bucket == null || bucket.isEmpty()) {
        throw new StorageException(
            "checkpoint URI '" + text + "' names no bucket (s3://bucket/prefix)");
      }
      if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
        throw new StorageException(
            "checkpoint URI '" + text + "': '" + bucket + "' is not a valid bucket name");
      }
      String prefix = uri.getPath() == null ? "" : uri.getPath();
      prefix = trimSlashes(prefix);
      for (String seg : prefix.split("/", -1)) {
        if (!prefix.isEmpty() && (seg.isEmpty() || seg.equals(".") || seg.equals(".."))) {
          throw new StorageException(
              "checkpoint URI '" + text + "' has an empty, '.' or '..' path segment");
        }
      }
      return new CheckpointUri("s3", bucket, prefix, null);
    }
    throw new StorageException(
        "checkpoint URI '"
            + text
            + "' has an unsupported scheme: use file:///path or s3://bucket/prefix");
  }

  public boolean isS3() {
    return "s3".equals(scheme);
  }

  /** The URI of a checkpoint below this one (for listings). */
  public String child(String relative) {
    if (relative.isEmpty()) {
      return toString();
    }
    if (isS3()) {
      return "s3://" + bucket + "/" + (prefix.isEmpty() ? "" : prefix + "/") + relative;
    }
    return "file://" + path.resolve(relative);
  }

  /** The last path segment: the checkpoint's name. */
  public String name() {
    if (isS3()) {
      int i = prefix.lastIndexOf('/');
      return prefix.isEmpty() ? bucket : prefix.substring(i + 1);
    }
    Path f = path.getFileName();
    return f == null ? "/" : f.toString();
  }

  static String trimSlashes(String s) {
    int b = 0;
    int e = s.length();
    while (b < e && s.charAt(b) == '/') {
      b++;
    }
    while (e > b && s.charAt(e - 1) == '/') {
      e--;
    }
    return s.substring(b, e);
  }

  @Override
  public String toString() {
    return isS3() ? "s3://" + bucket + (prefix.isEmpty() ? "" : "/" + prefix) : "file://" + path;
  }
}
