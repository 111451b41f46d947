package org.osfarm.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import org.osfarm.build.BuildListener;
import org.osfarm.build.DistroClass;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.core.Digest;

/**
 * What the job queue needs from the builder. {@link BuilderImageService} is the implementation over
 * {@link org.osfarm.build.ImageBuilder}; the seam keeps the queue independent of how images are
 * made.
 */
public interface ImageService {
  /** The classes a request may name. */
  Collection<DistroClass> classes();

  /**
   * Checks a spec without building (class, architecture, groups, format).
   *
   * @throws org.osfarm.build.SpecException naming what is wrong
   */
  void check(ImageSpec spec, OutputFormat format);

  /**
   * Builds (or finds) the image, names it {@code ref} and writes {@code output} in {@code format}.
   * Called from a worker thread; may take minutes.
   */
  Outcome build(ImageSpec spec, String ref, Path output, OutputFormat format, BuildListener l)
      throws IOException;

  /** What a build did. */
  record Outcome(Digest snapshot, int layersBuilt, int layersReused, boolean outputFromCache) {}
}
