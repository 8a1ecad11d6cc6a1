package dev.stasis.images;

import java.io.IOException;

/** An image file does not have the expected framing or content; the message names file and spot. */
public final class ImageFormatException extends IOException {
  private static final long serialVersionUID = 1L;

  public ImageFormatException(String message) {
    super(message);
  }

  public ImageFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
