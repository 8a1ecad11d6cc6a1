package dev.stasis.storage;

import java.io.IOException;

/**
 * A storage failure with a one-line message that names what was wrong (endpoint, bucket, object),
 * fit to print to the user as it is.
 */
public class StorageException extends IOException {
  private final boolean retryable;

  public StorageException(String message) {
    this(message, null, false);
  }

  public StorageException(String message, Throwable cause) {
    this(message, cause, false);
  }

  StorageException(String message, Throwable cause, boolean retryable) {
    super(message, cause);
    this.retryable = retryable;
  }

  /** True for transport failures and server errors that a later attempt may not hit again. */
  public boolean retryable() {
    return retryable;
  }
}
