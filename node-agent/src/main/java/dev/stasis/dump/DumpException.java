package dev.stasis.dump;

import java.io.IOException;

/** A dump that could not be completed; the message is one line naming what was wrong. */
public class DumpException extends IOException {
  public DumpException(String message) {
    super(message);
  }

  public DumpException(String message, Throwable cause) {
    super(message, cause);
  }
}
