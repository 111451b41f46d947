package org.osfarm.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import org.osfarm.build.BuildListener;
import org.osfarm.build.BuildResult;
import org.osfarm.build.DistroClass;
import org.osfarm.build.ImageBuilder;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.OutputRequest;
import org.osfarm.build.SnapshotWriter;
import org.osfarm.build.SpecException;
import org.osfarm.core.Repository;

/** {@link ImageService} over the build module's {@link ImageBuilder}. */
public final class BuilderImageService implements ImageService {
  private final ImageBuilder builder;
  private final Repository repo;
  private final Path workDir;

  public BuilderImageService(ImageBuilder builder) {
    this(builder, null, null);
  }

  /**
   * A service that can also deliver OCI images as one file: built without an output, then written
   * from {@code repo} by {@link SnapshotWriter} (scratch space in {@code workDir}).
   */
  public BuilderImageService(ImageBuilder builder, Repository repo, Path workDir) {
    this.builder = builder;
    this.repo = repo;
    this.workDir = workDir;
  }

  @Override
  public Collection<DistroClass> classes() {
    return builder.classes().all();
  }

  @Override
  public void check(ImageSpec spec, OutputFormat format) {
    DistroClass c = builder.classes().get(spec.className());
    if (spec.arch() != null && !c.architectures().contains(spec.arch())) {
      throw new SpecException(
          "class "
              + c.name()
              + " has no architecture '"
              + spec.arch()
              + "'; choose one of: "
              + String.join(", ", c.architectures()));
    }
    for (String g : spec.groups()) {
      c.group(g); // throws for an unknown group
    }
  }

  @Override
  public Outcome build(
      ImageSpec spec, String ref, Path output, OutputFormat format, BuildListener l)
      throws IOException {
    if (format == OutputFormat.OCI && repo != null) {
      // the builder writes an OCI layout directory; a download is one file: a tar of it
      BuildResult r = builder.build(spec, ref, List.of(), l);
      SnapshotWriter.write(repo, r.snapshot(), format, output, workDir, l);
      return new Outcome(r.snapshot(), r.layersBuilt(), r.layersReused(), false);
    }
    BuildResult r = builder.build(spec, ref, List.of(new OutputRequest(output, format)), l);
    return new Outcome(r.snapshot(), r.layersBuilt(), r.layersReused(), r.outputsFromCache() > 0);
  }
}
