package org.osfarm.build;

import java.nio.file.Path;

/** An output to write: where and in which format. */
public record OutputRequest(Path path, OutputFormat format) {
  /** The format from {@code format}, else from the file name. */
  public static OutputRequest of(Path path, String format) {
    OutputFormat f =
        format != null ? OutputFormat.parse(format) : OutputFormat.fromFileName(path.toString());
    if (f == null) {
      throw new IllegalArgumentException(
          "cannot tell the format of '" + path + "' from its name: give --format");
    }
    return new OutputRequest(path, f);
  }
}
