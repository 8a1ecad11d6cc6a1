package dev.stasis.compel;

import java.io.IOException;

/** A target that must not or cannot be seized; the message is one line naming the PID and why. */
public class SeizeException extends IOException {
  public SeizeException(String message) {
    super(message);
  }

  public SeizeException(String message, Throwable cause) {
    super(message, cause);
  }
}
