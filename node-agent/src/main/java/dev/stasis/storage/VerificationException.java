package dev.stasis.storage;

/**
 * A checkpoint's bytes do not match its manifest: a checksum or size differs, an encrypted chunk
 * fails authentication (wrong key, flipped bit, reordered or truncated chunks), or the manifest
 * itself is malformed or hostile. Nothing that failed verification is ever handed out as good.
 */
public final class VerificationException extends StorageException {
  public VerificationException(String message) {
    super(message);
  }

  public VerificationException(String message, Throwable cause) {
    super(message, cause);
  }
}
