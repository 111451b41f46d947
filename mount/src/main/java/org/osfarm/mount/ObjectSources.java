package org.osfarm.mount;

import java.io.IOException;
import java.nio.file.Path;

/** Opens the {@link ObjectSource} a mount's SOURCE argument names. */
public final class ObjectSources {
  private ObjectSources() {}

  /**
   * An {@code http://} or {@code https://} URL of an osfarm server, or a repository directory.
   *
   * @throws org.osfarm.core.NotFoundException when the directory holds no repository
   */
  public static ObjectSource open(String source) throws IOException {
    if (source.startsWith("http://") || source.startsWith("https://")) {
      return new HttpObjectSource(source);
    }
    return LocalObjectSource.open(Path.of(source));
  }

  /** True when {@code source} names a remote server rather than a directory. */
  public static boolean isRemote(String source) {
    return source.startsWith("http://") || source.startsWith("https://");
  }
}
